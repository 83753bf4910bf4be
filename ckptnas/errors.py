"""Exception and warning classes raised by ckptnas.

Every error a user can cause by their input derives from :class:`CkptnasError`, so the command
line can print one line naming the problem instead of a traceback.
"""

from __future__ import annotations


class CkptnasError(Exception):
    """Base class of every error ckptnas raises on purpose."""


class ConfigError(CkptnasError, ValueError):
    """A configuration file or value is malformed, unknown or out of range."""


class DataError(CkptnasError, ValueError):
    """A dataset cannot be built: a missing file or variable, mismatched or empty arrays."""


class RunDirectoryError(CkptnasError):
    """A run directory cannot be used: it already holds results, is locked or is not writable."""


class CheckpointError(CkptnasError):
    """A checkpoint is missing, truncated, or its tensors do not match their integrity hashes."""


class CheckpointDeletedError(CheckpointError):
    """A candidate's checkpoint was deleted on purpose, by the run's ``[storage]`` policy."""


class SearchSpaceError(CkptnasError, ValueError):
    """An architecture does not belong to its search space, or the space cannot be built."""


class SearchExhaustedError(CkptnasError):
    """The strategy cannot propose an architecture that has not been trained already."""


class ClusterError(CkptnasError):
    """The Dask cluster cannot be reached, or was lost during a run."""


class CandidateError(CkptnasError, LookupError):
    """A candidate that does not exist in a run, or has no trained model."""


class CkptnasWarning(UserWarning):
    """Warnings emitted by ckptnas itself."""


class ComparisonError(CkptnasError, ValueError):
    """Runs cannot be compared: no results, different datasets, or two runs of one cell."""


class SearchFailedError(CkptnasError):
    """A search trained no candidate: every one failed, or its first ones all failed alike."""

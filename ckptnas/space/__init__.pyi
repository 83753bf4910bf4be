from ._dense import ACTIVATIONS as ACTIVATIONS
from ._dense import LayerSpec as LayerSpec
from ._dense import Op as Op
from ._dense import SearchSpace as SearchSpace
from ._dense import VariableNode as VariableNode
from ._network import CandidateNet as CandidateNet
from ._network import Dense as Dense
from ._protocol import Architecture as Architecture

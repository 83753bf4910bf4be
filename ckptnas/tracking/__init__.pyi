from ._base import Tracker as Tracker
from ._feed import ResultFeed as ResultFeed
from ._feed import Update as Update
from ._make import tracking_listeners as tracking_listeners
from ._mlflow import MlflowListener as MlflowListener
from ._tensorboard import TensorBoardListener as TensorBoardListener

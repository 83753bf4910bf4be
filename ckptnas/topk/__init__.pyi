from ._records import FullTrainResult as FullTrainResult
from ._records import FullTrainSpec as FullTrainSpec
from ._records import TopKSettings as TopKSettings
from ._run import train_topk as train_topk
from ._train import full_train as full_train
from ._train import topk_store as topk_store

"""Models: torch modules (logistic regression, MLP, LeNet-style CNN) and their functional view.

Every model is used through :class:`FunctionalModel`, which evaluates a module at a flat
parameter vector. That is what lets one client-training function run for one client
(autograd) or a whole cohort at once (``torch.func.vmap``).
"""

from fedsim.models.functional import FunctionalModel, evaluate
from fedsim.models.zoo import CNN, MLP, LogisticRegression, build_model

__all__ = ["CNN", "MLP", "FunctionalModel", "LogisticRegression", "build_model", "evaluate"]

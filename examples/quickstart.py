"""The quickstart from Python: run it, then read the history and the run folder.

    FEDSIM_DATA=../shared/data python examples/quickstart.py
"""

from pathlib import Path

import fedsim

config = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
result = fedsim.run(config, overrides=["output.dir=runs/quickstart-python"])

for row in result.history[-3:]:
    print(f"round {row['round']:>3}  test accuracy {row['test_accuracy']:.4f}  train loss {row['train_loss']:.4f}")
print(f"final accuracy {result.final_accuracy:.4f}; run folder {result.run_dir}")

"""Print the model `train.yaml` wrote, as the emulator mapped it from gs:// to local disk.

    python examples/vertex/show_model.py [DATA_DIR]      (default: .gcpjobs, as `make demo` uses)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

data_dir = Path(sys.argv[1] if len(sys.argv) > 1 else ".gcpjobs")
model_file = data_dir / "emulator/gcs/gcpjobs-demo/logreg/model/model.json"
model = json.loads(model_file.read_text())
print(f"model: {model_file} (test accuracy {model['test_accuracy']:.3f})")

"""Print what this flashvsr build offers (run with the .venv's python)."""

import json

import flashvsr

print(f"flashvsr {flashvsr.__version__}")
print(json.dumps(flashvsr.build_info(), indent=2))

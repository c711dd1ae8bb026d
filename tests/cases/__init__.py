"""Case tables shared by the integration tests and the drills: data (and the few functions that
build or evaluate it), never fixtures or test functions. The drills import these, never a test
module (import-linter holds both rules)."""

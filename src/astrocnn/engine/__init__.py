"""The engine: training, evaluation, prediction, export and the demo, on Lightning."""

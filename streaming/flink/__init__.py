"""PyFlink jobs of the speed layer: these modules import pyflink and run in the Flink venv
(the client that submits them and the Python workers of the TaskManager)."""

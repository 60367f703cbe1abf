"""Executors: one class per backend (:mod:`.slurm`, :mod:`.local`, :mod:`.debug`) behind the
interface of :mod:`.base`, chosen by name in :mod:`.registry`."""

from bench.harness.executors.base import Executor, Submission
from bench.harness.executors.registry import executor_names, get_executor, known_executor, pick_executor

__all__ = ["Executor", "Submission", "executor_names", "get_executor", "known_executor", "pick_executor"]

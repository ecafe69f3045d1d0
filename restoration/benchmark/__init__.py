"""The cross-task SNN-vs-ANN benchmark behind ``tools/benchmark.py``.

Every task plugin declares a *suite* (``benchmark_suite`` in ``tasks/<name>.py``): the
spiking model, its ANN twin and the ANN baseline, each with the recipe it is trained
with; this module reads it through :data:`SUITES` and never names a task. A *budget* fixes what is equal for all models
of a task: data, crop, batch, number of optimiser steps, seed; each model keeps its
recipe's optimiser, loss and schedule shape (the warm-up keeps its fraction of the run).

Measured per model (one row, :data:`FIELDS`):

* quality on the held-out split with the task's metric protocol (evaluator of the
  engine); for a task whose suite has an ``snr_sweep`` (a channel) also a sweep over SNRs;
* cost at a stated size (:data:`STATED_SIZE`): parameters, MACs, and SOPs / energy from
  the per-layer input firing rates measured on the held-out images
  (:func:`measure_ops`, :func:`cost_at_size`)::

      E = 4.6 pJ x MACs(layers fed by real values) + 0.9 pJ x SOPs(layers fed by spikes)
      SOPs(layer) = MACs(layer, all T steps) x its input firing rate on held-out images

  and beside it the memory-aware estimate under each level of
  :data:`restoration.energy.MEMORY_LEVELS` (``energy_sram_mj``, ``energy_dram_mj``: the
  energy above plus the bits moved, :func:`restoration.energy.memory_traffic`), and the
  SNN/ANN-twin ratio under each (:func:`energy_ratio_line`);
* speed and memory, each in a fresh Python process (:func:`measure_speed`, the
  ``_measure`` entry point of this module): medians over repeats after warm-up; peak
  memory of one step above what is in use after a warm-up step, in a second process:
  the resident high-water mark (``VmHWM``, reset through Linux ``/proc/self/clear_refs``,
  with glibc's mmap threshold fixed so that freed tensors leave the resident set) on
  CPU, ``torch.cuda.max_memory_allocated`` on CUDA.

Output helpers: :func:`write_csv`, :func:`markdown_report`, :func:`plot_quality_energy`,
:func:`plot_snr_curves`, :func:`plot_firing_rates`. Everything is written to a temporary
name and renamed.

One module per job; this package re-exports their names:

* ``suite.py``: what is compared and under which budget (from the task plugins);
* ``cost.py``: operation counts and energy; ``quality.py``: seeds, severities, the verdict;
* ``speed.py``: latency and memory in fresh processes; ``run.py``: running the jobs;
* ``report.py``: rows, CSV, markdown; ``plots.py``: the figures; ``spikes.py``: firing-rate maps;
* ``cli.py``: ``tools/benchmark.py``.
"""
from ..energy import MEMORY_LEVELS  # noqa: F401
from ..engine.task import ModelSpec  # noqa: F401  (the task plugins declare their suites with it)
from .suite import (  # noqa: F401
    _TaskTable, SUITES, EXTRA_SPECS, task_specs, STATED_SIZE, MICRO_SHARE, BUDGETS, snr_sweep, SEED0,
    budget_overrides, build_bench_config, stated_item)
from .cost import (  # noqa: F401
    ENERGY_FORMULA, MEMORY_FORMULA, TaskModel, is_spiking, aggregate_layers, measure_ops, cost_at_size,
    energy_ratio_line)
from .quality import (  # noqa: F401
    SEED_METRICS, aggregate_seeds, seed_comparisons, severity_quality, severity_fields, severity_table, verdict)
from .speed import (  # noqa: F401
    ROOT, _peak_mb, _steps, _measure, measure_speed, _measure_cli)
from .report import (  # noqa: F401
    FIELDS, SPEED_FIELDS, QUALITY_COLUMNS, speed_keys, csv_keys, _atomic_write_text, write_csv, markdown_table,
    speed_table, snr_table, with_std, markdown_report)
from .plots import (  # noqa: F401
    ROLE_STYLE, _plt, _save, plot_quality_energy, plot_snr_curves, plot_firing_rates)
from .spikes import (  # noqa: F401
    spike_maps, region_rates)

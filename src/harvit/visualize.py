"""The visualisation API in one module::

    from harvit.visualize import (plot_training_history, plot_confusion_matrix,
                                  generate_classification_report, create_training_report)

A façade: the functions live in :mod:`harvit.reporting.plots`, :mod:`harvit.reporting.encoded` and
:mod:`harvit.reporting.report`.
"""

from harvit.reporting.encoded import plot_encoded_images
from harvit.reporting.plots import (
    generate_classification_report,
    plot_confusion_matrices,
    plot_confusion_matrix,
    plot_lr_schedule,
    plot_per_class_accuracy,
    plot_training_history,
)
from harvit.reporting.report import create_training_report

__all__ = [
    "create_training_report",
    "generate_classification_report",
    "plot_confusion_matrices",
    "plot_confusion_matrix",
    "plot_encoded_images",
    "plot_lr_schedule",
    "plot_per_class_accuracy",
    "plot_training_history",
]

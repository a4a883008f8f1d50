"""The settings of the user's own data (``--dataset PATH``: tables, ``.npz`` windows, ``.ts`` files), declared once.

:class:`OwnDataSettings` is one group of :class:`harvit.config.Config` (its fields are the config's, flat, as
flags and in ``config.json``) and the base of :class:`harvit.data.options.OwnOptions`, the data layer's value of
them, so a run's ``config.json`` alone rebuilds the same windows. Every one goes into the prepared-windows
cache key.
"""

from __future__ import annotations

from dataclasses import dataclass

from harvit.config.choices import SUBJECT_SOURCES, TIME_UNITS
from harvit.config.fields import check, check_choices, in_group, setting, split_list
from harvit.utils.errors import HarvitError

ACC_UNITS = ("auto", "g", "m/s2")
"""Units of acceleration a run can be trained on (``auto``: told from the training data)."""


@dataclass(frozen=True)
@in_group("own data")
class OwnDataSettings:
    """How a user's files become windows (all optional; the defaults read most tables as they are)."""

    label_column: str | None = setting(None, "table column of the activity labels; unset: the first of label, "
                                       "activity, class. An empty cell is an unlabelled sample")
    subject_column: str | None = setting(None, "table column of the subject ids; unset: the first of subject, user, "
                                         "participant (none: windows are split stratified by class, with a warning)")
    recording_column: str | None = setting(None, "table column of the recording ids; a window never crosses "
                                           "recordings (unset: the first of recording, session, experiment, else "
                                           "each file and subject)")
    time_column: str | None = setting(None, "table column of the sample times in s, ms, us, ns or ISO datetimes, "
                                      "detected (unset: the first of time, timestamp, time_s, t; none: --rate is "
                                      "required)")
    time_unit: str = setting("auto", "unit of a numeric time column; auto: a name suffix (_s, _ms, _us, _ns), else "
                             "the unit whose median step gives 1-1000 Hz, else an epoch magnitude", TIME_UNITS)
    subject_from: str = setting("auto", "where a table's subjects come from; auto: the subject column, else (files "
                                "in subfolders) the first folder level under the data set's folder, else none; file: "
                                "each file's name; none: no subjects (windows split stratified by class)",
                                SUBJECT_SOURCES)
    channels: str | None = setting(None, "comma-separated table columns used as channels (unset: every other "
                                   "numeric column); <sensor>_x/_y/_z names form sensor triples")
    columns: str | None = setting(None, "comma-separated column names of header-less CSV files (unset: a first "
                                  "line holding a number is data, and the columns are named by what they hold)")
    annotations: str | None = setting(None, "table of labelled intervals (start, end, label; date-times) for a long "
                                      "recording given as --dataset (a device file .cwa/.bin/.gt3x or a table of "
                                      "samples); a folder of recordings takes a folder of tables named after them")
    rate: float = setting(0.0, "sampling rate in Hz: tables are resampled to it (anti-aliased; 0: the data's own "
                          "rate, required for tables without a time column); .npz/.ts without a stated rate: their "
                          "rate")
    window_s: float = setting(2.56, "table windows: length in seconds")
    overlap: float = setting(0.5, "table windows: overlap of consecutive windows, a fraction in [0, 1)")
    train_overlap: float = setting(0.0, "table windows: overlap of consecutive *training* windows, a fraction in "
                                   "[0, 1) (0: --overlap; the cpu preset's 0.75 on tables is its --train-stride 32 "
                                   "of 128); test windows keep --overlap", tags={"resume"})
    lowpass: float = setting(0.0, "table preprocessing: 3-sample median filter and a 3rd-order Butterworth low-pass "
                             "at this cutoff in Hz on every channel (UCI HAR: 20; 0: off)")
    gravity_split: str | None = setting(None, "table preprocessing: split the total-acceleration triple "
                                        "SENSOR_x/_y/_z at 0.3 Hz into body_SENSOR_* (in place) and total_SENSOR_* "
                                        "(appended), as UCI HAR")
    test_subjects: str | None = setting(None, "own data: comma-separated subjects (names or ids) held out for test "
                                        "(unset: a seeded draw of --test-fraction of the subjects; files with their "
                                        "own split keep it)")
    acc_unit: str = setting("auto", "unit of the acceleration the run is trained on: g or m/s2 (predict "
                            "--recording converts a recording to it); auto: told from the training data's range",
                            ACC_UNITS)
    test_fraction: float = setting(0.3, "own data without --test-subjects or a split of its own: fraction of the "
                                   "subjects (or, without subjects, of each class's windows) held out for test")

    def validate(self) -> OwnDataSettings:
        """Check the values; raise :class:`HarvitError` naming the first bad flag."""
        check_choices(self, OwnDataSettings)
        check(self.rate >= 0, "rate", self.rate, "a rate in Hz >= 0 (0: the data's own)")
        check(self.window_s > 0, "window_s", self.window_s, "a window length in seconds > 0")
        check(0 <= self.overlap < 1, "overlap", self.overlap, "a fraction in [0, 1)")
        check(0 <= self.train_overlap < 1, "train_overlap", self.train_overlap, "a fraction in [0, 1)")
        check(self.lowpass >= 0, "lowpass", self.lowpass, "a cutoff in Hz >= 0 (0: off)")
        check(0 < self.test_fraction < 1, "test_fraction", self.test_fraction, "a fraction in (0, 1)")
        for name in ("channels", "columns", "test_subjects"):
            value = getattr(self, name)
            check(value is None or bool(split_list(value)), name, value, "comma-separated names")
        names = split_list(self.columns)
        if len(set(names)) != len(names):
            raise HarvitError(f"--columns: repeated name in {self.columns!r}")
        return self

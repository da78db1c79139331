"""A course's own late-penalty rule, as nbgrader's AssignLatePenalties.plugin_class names it:
one point off per started hour late."""
import math

from nbgrader.plugins import BasePlugin


class PointPerHour(BasePlugin):
    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return math.ceil(total_seconds_late / 3600)

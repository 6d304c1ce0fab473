"""The case after detection: the procedure's deadlines and working-day calendar (more to come:
the party, service, documents, payments)."""

from .calendar import Deadline, HolidayFile, WorkCalendar, deadline

__all__ = ["Deadline", "HolidayFile", "WorkCalendar", "deadline"]

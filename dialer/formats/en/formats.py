"""How the admin writes dates and times (Django's format strings): ISO order, seconds, the zone's
abbreviation, so an operator never has to guess which clock a time is on."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"

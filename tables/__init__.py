"""Faust tables of a replica worker; found by the app's autodiscover."""

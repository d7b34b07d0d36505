"""The REST API's shared parts (issue #8, docs/api.md): tokens, permissions, errors, paging, throttles, URLs.

Each app keeps its own serializers and views (tickets/api.py, messaging/api.py, media/api.py); they call
the same services and selectors as the web pages and the console.
"""

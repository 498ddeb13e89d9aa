"""GraphQL-facing functions: turn arguments and the viewer into calls to services/.

schema/ imports no service but its error classes (services.platform.errors); what else it is made of comes through here:
the page every list resolver returns, and its largest size."""

from services.platform.pagination import MAX_PAGE as MAX_PAGE
from services.platform.pagination import Page as Page

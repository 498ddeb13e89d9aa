"""GraphQL-facing functions: turn arguments and the viewer into calls to services/.

schema/ imports no service: what it is made of comes through here: the errors a rule raises (schema/core/errors.py
presents them), the permission catalogue fields declare, the page every list resolver returns, and its largest size."""

from services.access.permissions import Perm as Perm
from services.platform.errors import AccessDenied as AccessDenied
from services.platform.errors import DomainError as DomainError
from services.platform.errors import ErrorCode as ErrorCode
from services.platform.errors import Unauthenticated as Unauthenticated
from services.platform.pagination import MAX_PAGE as MAX_PAGE
from services.platform.pagination import Page as Page

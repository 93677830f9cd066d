"""The helpdesk (members of PORTAL_HELPDESK_GROUP), one module a part:

- console.py: HelpdeskService, search, the person and request files, acting
  on behalf of a member;
- decisions.py: HelpdeskDecisions, the approver of last resort of a stuck
  request (approve, reject, resend, release);
- institutions.py: HelpdeskInstitutions, institutions, their representatives
  and deputies, the CSV import and the member-list export;
- common.py: HelpdeskRefused, the reason every action needs, the history rows.
"""
from .common import HelpdeskRefused, HistoryRow
from .console import HelpdeskService, PersonFile, RequestFile, SearchResult, search_terms
from .decisions import STUCK_AFTER, HelpdeskDecisions
from .institutions import HelpdeskInstitutions, ImportLine, InstitutionFile, safe_cell

__all__ = ["STUCK_AFTER", "HelpdeskDecisions", "HelpdeskInstitutions", "HelpdeskRefused",
           "HelpdeskService", "HistoryRow", "ImportLine", "InstitutionFile", "PersonFile",
           "RequestFile", "SearchResult", "safe_cell", "search_terms"]

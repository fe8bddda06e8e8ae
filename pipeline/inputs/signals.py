"""Profile signals that count against a lead: free-mail or throwaway e-mail, spam-like names,
and seniority read from a free-text job title.

One module per signal, each a scalar reference function with a vectorised twin that computes
on the distinct values of a column (:mod:`pipeline.inputs.signal_values`):
:mod:`pipeline.inputs.email_domains`, :mod:`pipeline.inputs.spam_names`,
:mod:`pipeline.inputs.job_titles`. This module gathers their public names in one place.
"""

from pipeline.inputs.email_domains import (
    EMAIL_DOMAIN_TYPES,
    EMAIL_RE,
    DomainLists,
    domain_lists_digest,
    email_domain_type,
    email_domain_types,
    load_domain_lists,
)
from pipeline.inputs.job_titles import (
    NOT_A_RANK,
    SENIORITY_LEVELS,
    SENIORITY_RULES,
    seniorities,
    seniority,
)
from pipeline.inputs.spam_names import (
    FAKE_PAIRS,
    FAKE_UNLESS_TITLE,
    FAKE_VALUES,
    FAKE_WORDS,
    KEYBOARD_ROWS,
    NAME_RUNS,
    RUN_PIECES,
    SINGLE_CHAR_NAME_SCRIPTS,
    SPAM_REASONS,
    is_spam_name,
    spam_field_flags,
    spam_flags,
    spam_reasons,
)

__all__ = [
    "EMAIL_DOMAIN_TYPES", "EMAIL_RE", "FAKE_PAIRS", "FAKE_UNLESS_TITLE", "FAKE_VALUES",
    "FAKE_WORDS", "KEYBOARD_ROWS", "NAME_RUNS", "NOT_A_RANK", "RUN_PIECES", "SENIORITY_LEVELS",
    "SENIORITY_RULES", "SINGLE_CHAR_NAME_SCRIPTS", "SPAM_REASONS", "DomainLists",
    "domain_lists_digest", "email_domain_type", "email_domain_types", "is_spam_name",
    "load_domain_lists", "seniorities", "seniority", "spam_field_flags", "spam_flags",
    "spam_reasons",
]

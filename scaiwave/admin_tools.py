"""Shared pieces of the operators' console: confirmed actions that log, and a paginator that caps its count.

Every admin action that changes something goes through `run_confirmed`: the first POST shows a confirmation
page listing the objects, the second (with `post=yes`) calls the domain service once per object, records a
LogEntry per object acted on (Django's admin log, so "who ended this call" has an answer), and reports back
with a message. Actions are declared with `permissions=["change"]`, so a view-only (support) user neither
sees nor can run them: Django drops them from the action list and refuses a forged POST.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.functional import cached_property

from scaiwave.api.errors import ProblemError

# An action's outcome for one object: a short sentence for the message, or None when there was nothing to do.
Outcome = str | None
# Up to this many objects acted on, the message lists each one's outcome.
SHOWN_OUTCOMES = 10


def log_action(request: HttpRequest, obj: Model, message: str) -> None:
    """One admin-log line: who did what to which object."""
    user_id = request.user.pk
    assert user_id is not None  # the admin only lets authenticated staff in
    LogEntry.objects.log_actions(
        user_id=user_id,
        queryset=[obj],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )


def run_confirmed(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    title: str,
    explanation: str,
    run: Callable[[Any], Outcome],
) -> HttpResponse | None:
    """Confirm, then run `run(obj)` for each selected object through its service, log it and say what happened.

    `run` returns a sentence when it changed something, None when the object needed nothing; a
    ProblemError (LiveKit unreachable, a state conflict) becomes an error message for that object.
    """
    action = request.POST.get("action", "")
    if request.POST.get("post") != "yes":
        opts = modeladmin.model._meta
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "explanation": explanation,
            "objects": list(queryset),
            "action": action,
            "opts": opts,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/scaiwave/confirm_action.html", context)
    done: list[str] = []
    skipped = 0
    for obj in queryset:
        try:
            outcome = run(obj)
        except ProblemError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.detail}", messages.ERROR)
            continue
        if outcome is None:
            skipped += 1
            continue
        done.append(f"{obj}: {outcome}")
        log_action(request, obj, f"{title}: {outcome}")
    summary = f"{title}: done for {len(done)}"
    if skipped:
        summary += f", nothing to do for {skipped}"
    if 0 < len(done) <= SHOWN_OUTCOMES:
        summary += " (" + "; ".join(done) + ")"
    modeladmin.message_user(request, summary + ".", messages.SUCCESS if done or not skipped else messages.WARNING)
    return None


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows, so a changelist of a huge table never runs a full COUNT(*).

    Past the cap the page links stop at CAP / per_page; filters and search narrow the list further.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        object_list: Any = self.object_list
        if isinstance(object_list, QuerySet):
            return int(object_list.order_by()[: self.CAP].count())
        return len(object_list)


# For change pages where nothing is edited in place (every change goes through an action and its service).
NO_SAVE_BUTTONS = {"show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False}

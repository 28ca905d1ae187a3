"""`{% admin_dashboard %}`: the operators' dashboard figures, drawn at the top of the admin index."""

from __future__ import annotations

from typing import Any

from django import template

from scaiwave.admin_dashboard import dashboard_figures

register = template.Library()


@register.inclusion_tag("admin/scaiwave/dashboard.html", takes_context=True)
def admin_dashboard(context: template.Context) -> dict[str, Any]:
    return {"figures": dashboard_figures(), "request": context.get("request")}

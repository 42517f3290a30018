"""The ticket lifecycle's pure rules: every transition allowed and refused, and the excerpt."""

import pytest

from services.tickets import lifecycle
from shared.errors import Conflict, Forbidden, ValidationFailed

OPEN_STATUSES = ("open", "answered", "customer_reply")


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_client_reply_to_a_ticket_that_is_not_closed_is_customer_reply(status):
    assert lifecycle.status_after_reply(status, "client") == "customer_reply"


def test_client_reply_to_a_closed_ticket_is_a_conflict():
    with pytest.raises(Conflict) as info:
        lifecycle.status_after_reply("closed", "client")
    assert info.value.status == 409
    assert "reopen" in info.value.detail


@pytest.mark.parametrize("status", lifecycle.STATUSES)
def test_operator_reply_always_answers(status):
    assert lifecycle.status_after_reply(status, "operator") == "answered"


def test_a_new_ticket_is_open():
    assert lifecycle.status_of_new_ticket(None, allow_duplicate=False) == "open"


def test_a_second_ticket_about_the_same_matter_names_the_open_one():
    with pytest.raises(Conflict) as info:
        lifecycle.status_of_new_ticket(12, allow_duplicate=False)
    assert info.value.extra == {"open_ticket": 12}
    assert "#12" in info.value.detail


def test_a_second_ticket_is_opened_when_the_client_insists():
    assert lifecycle.status_of_new_ticket(12, allow_duplicate=True) == "open"


def test_client_reopens_a_closed_ticket():
    assert lifecycle.status_after_reopen("closed", "client") == "open"


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_reopening_a_ticket_that_is_not_closed_is_a_conflict(status):
    with pytest.raises(Conflict):
        lifecycle.status_after_reopen(status, "client")


@pytest.mark.parametrize("status", lifecycle.STATUSES)
def test_an_operator_never_reopens(status):
    with pytest.raises(Forbidden) as info:
        lifecycle.status_after_reopen(status, "operator")
    assert info.value.status == 403


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_close_from_any_status_but_closed(status):
    assert lifecycle.status_after_close(status) == "closed"


def test_closing_a_closed_ticket_is_a_conflict():
    with pytest.raises(Conflict):
        lifecycle.status_after_close("closed")


@pytest.mark.parametrize(
    ("status", "waiting"),
    [("open", True), ("customer_reply", True), ("answered", False), ("closed", False)],
)
def test_waiting_means_the_client_waits_for_an_operator(status, waiting):
    assert lifecycle.is_waiting(status) is waiting


def test_statuses_are_the_four_of_the_spec():
    assert set(lifecycle.STATUSES) == {"open", "answered", "customer_reply", "closed"}


def test_a_short_message_is_its_own_excerpt():
    assert lifecycle.excerpt("Hola, no funciona el correo.") == "Hola, no funciona el correo."


def test_the_excerpt_is_on_one_line():
    assert lifecycle.excerpt("  Hola,\n\n  no  funciona\tel correo.\r\n") == (
        "Hola, no funciona el correo."
    )


def test_a_long_message_is_cut_with_an_ellipsis():
    body = "palabra " * 100
    out = lifecycle.excerpt(body)
    assert len(out) <= lifecycle.EXCERPT_LENGTH
    assert out.endswith("…")
    assert body.startswith(out[:-1])


def test_a_message_of_exactly_the_excerpt_length_is_not_cut():
    body = "x" * lifecycle.EXCERPT_LENGTH
    assert lifecycle.excerpt(body) == body
    assert lifecycle.excerpt(body + "y") == "x" * (lifecycle.EXCERPT_LENGTH - 1) + "…"


def test_excerpt_keeps_unicode_and_markup_as_text():
    assert lifecycle.excerpt("¿Qué pasa? <script>alert(1)</script> 🙂") == (
        "¿Qué pasa? <script>alert(1)</script> 🙂"
    )


# --- the summary, the collision guard and the assignee (SPEC 9.2) ------------------------------


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        ("No puedo entrar a mi correo", "No puedo entrar a mi correo"),
        ("  Dos\nlíneas\t y   espacios  ", "Dos líneas y espacios"),
        ("x" * 60, "x" * 60),
        ("x" * 61, "x" * 60 + "…"),
        ("palabra " * 20, "palabra palabra palabra palabra palabra palabra palabra…"),
        # A word ending exactly at the limit is kept whole.
        ("a" * 55 + " bcde fgh", "a" * 55 + " bcde…"),
        ("🙂 " * 40, "🙂 " * 29 + "🙂…"),
    ],
)
def test_the_summary_is_the_first_words_of_the_query(body, summary):
    assert lifecycle.summary(body) == summary
    assert len(lifecycle.summary(body)) <= lifecycle.SUMMARY_LENGTH + 1


def test_the_collision_guard_passes_the_newest_message_or_no_claim():
    lifecycle.check_last_message(None, 7)
    lifecycle.check_last_message(7, 7)


@pytest.mark.parametrize("seen", [6, 8, 1])
def test_the_collision_guard_refuses_any_other_message_naming_the_newest(seen):
    with pytest.raises(Conflict) as info:
        lifecycle.check_last_message(seen, 7)
    assert info.value.status == 409
    assert info.value.extra == {"last_message_id": 7}


def test_a_ticket_is_assigned_only_to_a_known_enabled_operator():
    lifecycle.check_assignee(known=True, disabled=False)
    for known, disabled in ((False, False), (True, True)):
        with pytest.raises(ValidationFailed) as info:
            lifecycle.check_assignee(known=known, disabled=disabled)
        assert info.value.status == 422
        assert [e["field"] for e in info.value.extra["errors"]] == ["operator_id"]

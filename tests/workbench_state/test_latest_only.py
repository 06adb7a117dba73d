"""The new-run dialog's background pre-flight, as plain data: one check in flight, the latest form waiting, an
answer for an older form dropped; no QApplication."""

from workbench.session.latest_only import LatestOnly


def test_one_check_in_flight_the_latest_waiting_and_stale_answers_dropped():
    checks: LatestOnly[str] = LatestOnly()
    assert not checks.pending and checks.start() is None
    checks.request("ratio 5")
    assert checks.pending
    _, payload = checks.start()
    assert payload == "ratio 5" and checks.start() is None  # one in flight at a time
    checks.request("ratio 6")
    checks.request("ratio 7")  # typed meanwhile: only the latest waits, 6 is never checked
    assert checks.pending and checks.start() is None
    assert checks.answered() == ("ratio 5", False)  # the answer for 5 is stale: dropped
    _, payload = checks.start()
    assert payload == "ratio 7" and checks.pending
    assert checks.answered() == ("ratio 7", True) and not checks.pending  # the form as it is now: applied


def test_a_form_its_own_rules_refuse_is_not_checked_but_makes_earlier_answers_stale():
    checks: LatestOnly[str] = LatestOnly()
    checks.request("valid")
    checks.start()
    checks.request(None)  # the form now fails its own rules: nothing to ask the pre-flight
    assert not checks.pending and checks.answered() == ("valid", False) and checks.start() is None

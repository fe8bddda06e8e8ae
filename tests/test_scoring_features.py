"""The one scoring feature builder (:func:`pipeline.inputs.features.scoring_features`) on small
hand-made leads and events, and the settings of models logged before it (legacy artifacts)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from pipeline.errors import UserError
from pipeline.inputs.features import (
    FeatureSettings,
    MissingEventsError,
    derive_signals,
    event_factors,
    scoring_features,
)
from pipeline.model.rules import DerivedSignals, FactorRules, PointsRules
from pipeline.scoring.frame import score_frame
from pipeline.scoring.serving import legacy_settings, raw_input_columns, score_columns

DERIVED = DerivedSignals(email_column="email", name_columns=["first", "last"],
                         title_column="title")
SETTINGS = FeatureSettings(id_column="lead_id", created_at_column="created",
                           missing_values=["NA"], event_to_group={"trial": "product",
                                                                  "webinar": "other"},
                           windows=[7], key_group="product")
AS_OF = pd.Timestamp("2024-03-01")


def make_rules(**overrides) -> PointsRules:
    """email_domain_type and name_spam (derived), decayed_product (events), source (given)."""
    base = dict(
        factors=[
            FactorRules("email_domain_type", "FIT", "categorical",
                        levels={"business": 10, "freemail": 0, "disposable": -10}),
            FactorRules("name_spam", "FIT", "categorical", levels={"no": 0, "yes": -5}),
            FactorRules("source", "FIT", "categorical", levels={"Web": 3}),
            FactorRules("decayed_product", "PAIN", "numeric", edges=[0.0, 0.75],
                        bin_points=[0, 8, 20], missing_points=-1),
        ],
        missing_values=["NA"], id_column="lead_id", sdr_threshold=20, derived=DERIVED,
        decay_half_life_days={"product": 7.0, "other": 3.0}, spam_gate=True)
    base.update(overrides)
    return PointsRules(**base)


def raw_leads() -> pd.DataFrame:
    return pd.DataFrame({
        "lead_id": [1, 2, 3, 4],
        "email": ["ann@acme-widgets.com", "bob@gmail.com", " NA ", "cy@acme-widgets.com"],
        "first": ["Ann", "Bob", "asdfgh", "Cy"],
        "last": ["Lee", "Stone", "qwerty", "Ng"],
        "title": ["CTO", "Intern", None, "VP Sales"],
        "source": ["Web", "Web ", "NA", "Ads"],
        "created": ["2024-01-01", "2024-01-05", None, "2024-04-01"],  # 3: none; 4: after as_of
    })


def events() -> pd.DataFrame:
    return pd.DataFrame({
        "lead_id": ["1", "1", "2", "3"],
        "event": ["trial", "webinar", "trial", "trial"],
        "timestamp": ["2024-02-23", "2024-02-28", "2024-01-10", "2024-02-01"],
    })


def test_builds_derived_signals_and_event_features_from_raw_leads():
    frame = scoring_features(raw_leads(), make_rules(), SETTINGS, events=events(), as_of=AS_OF)
    assert frame["email_domain_type"].tolist()[:2] == ["business", "freemail"]
    assert frame["name_spam"].tolist() == ["no", "no", "yes", "no"]
    assert frame["source"].tolist() == ["Web", "Web", None, "Ads"]  # cleaned as in training
    decayed = frame["decayed_product"].tolist()
    assert decayed[0] == pytest.approx(0.5 ** (7 / 7.0))  # one trial, one half-life ago
    assert decayed[1] == pytest.approx(0.5 ** (51 / 7.0))
    assert math.isnan(decayed[2]) and math.isnan(decayed[3])  # no creation time / after as_of
    assert "seniority" not in frame.columns  # not a factor: not derived


def test_given_columns_are_kept_and_event_features_replace_given_ones():
    raw = raw_leads().assign(name_spam=["yes", "no", "no", "no"], decayed_product=[9, 9, 9, 9])
    frame = scoring_features(raw, make_rules(), SETTINGS, events=events(), as_of=AS_OF)
    assert frame["name_spam"].tolist() == ["yes", "no", "no", "no"]
    assert frame["decayed_product"].tolist()[0] == pytest.approx(0.5)
    assert list(frame.columns).count("decayed_product") == 1


def test_event_table_made_once_gives_the_same_features():
    from pipeline.inputs.event_features import scoring_event_table

    rules = make_rules()
    table = scoring_event_table(raw_leads(), events(), rules, SETTINGS, as_of=AS_OF)
    once = scoring_features(raw_leads().head(2), rules, SETTINGS, event_table=table)
    direct = scoring_features(raw_leads().head(2), rules, SETTINGS, events=events(),
                              as_of=AS_OF)
    pd.testing.assert_frame_equal(once, direct)


def test_leads_without_events_get_a_clear_error_naming_what_to_pass():
    with pytest.raises(MissingEventsError, match=r"decayed_product.*event log") as info:
        scoring_features(raw_leads(), make_rules(), SETTINGS)
    assert isinstance(info.value, ValueError) and isinstance(info.value, UserError)
    assert "params={'events'" in info.value.hint
    given = raw_leads().assign(decayed_product=[0.9, 0.1, None, 0.0])  # a feature table
    frame = scoring_features(given, make_rules(), SETTINGS)
    assert frame["decayed_product"].tolist()[:2] == [0.9, 0.1]
    without = make_rules(factors=make_rules().factors[:3])
    assert event_factors(without, SETTINGS) == []
    assert "decayed_product" not in scoring_features(raw_leads(), without, SETTINGS).columns


def test_the_spam_gate_and_the_scores_follow_from_raw_leads():
    rules = make_rules()
    out = score_columns(rules, SETTINGS, raw_leads(), events=events(), as_of=AS_OF)
    features = scoring_features(raw_leads(), rules, SETTINGS, events=events(), as_of=AS_OF)
    assert out["points"].tolist() == score_frame(rules, features)["points"].tolist()
    assert out["points"].tolist()[0] == 10 + 0 + 3 + 8
    # lead 3 (spam name: 10 - 5 + 3 - 1 = 7 points >= 5) is held back by the gate only
    from dataclasses import replace

    low = replace(rules, sdr_threshold=5)
    rich = raw_leads().assign(source="Web", email="x@acme-widgets.com")
    gated = score_columns(low, SETTINGS, rich, events=events(), as_of=AS_OF)
    plain = score_columns(replace(low, spam_gate=False), SETTINGS, rich, events=events(),
                          as_of=AS_OF)
    assert gated["points"].tolist() == plain["points"].tolist()
    assert plain["sdr_ready"].tolist()[2] and not gated["sdr_ready"].tolist()[2]


def test_raw_input_columns_name_what_a_raw_lead_needs():
    columns = raw_input_columns(make_rules(), SETTINGS)
    assert columns == ["lead_id", "created", "email", "first", "last", "title", "source"]


def test_derive_signals_computes_only_what_is_wanted():
    frame = derive_signals(raw_leads(), DERIVED, ["seniority"])
    assert list(frame.columns) == ["seniority"]
    assert list(derive_signals(raw_leads(), DerivedSignals()).columns) == []


def test_models_logged_with_only_derived_settings_still_score_raw_leads():
    """A model of schema 1.0 (no derived settings in its table, the spam gate in the config's
    ``derived`` section): the legacy artifact supplies both."""
    old = make_rules(derived=DerivedSignals(), spam_gate=False,
                     factors=make_rules().factors[:3], decay_half_life_days={})
    legacy = {"email_column": "email", "name_columns": ["first", "last"], "title_column": None,
              "extra_free_domains": [], "extra_disposable_domains": [], "spam_gate": True}
    rules, settings = legacy_settings(old, legacy)
    assert rules.spam_gate and settings.derived.name_columns == ["first", "last"]
    out = score_columns(rules, settings, raw_leads())
    assert out["fit"].tolist() == [13, 3, -5, 10]
    # the gate needs name_spam: a factor, or names to derive it from
    assert legacy_settings(old, {**legacy, "name_columns": []})[0].spam_gate
    email_only = make_rules(derived=DerivedSignals(), spam_gate=False,
                            factors=make_rules().factors[:1], decay_half_life_days={})
    assert not legacy_settings(email_only, {**legacy, "name_columns": []})[0].spam_gate


def test_a_table_learned_with_other_domain_lists_is_noted():
    from dataclasses import replace

    from pipeline.inputs.features import domain_lists_note
    from pipeline.inputs.signals import domain_lists_digest

    current = replace(DERIVED, domain_lists_sha256=domain_lists_digest())
    assert domain_lists_note(make_rules(derived=current)) is None
    assert domain_lists_note(make_rules()) is None  # no digest recorded (schema 1.0)
    other = make_rules(derived=replace(DERIVED, domain_lists_sha256="f" * 64))
    assert "other free-mail / disposable domain lists" in domain_lists_note(other)
    no_email = make_rules(derived=replace(DERIVED, domain_lists_sha256="f" * 64),
                          factors=make_rules().factors[1:])
    assert domain_lists_note(no_email) is None

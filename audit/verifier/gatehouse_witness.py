#!/usr/bin/env python3
"""A Gatehouse ledger witness: a separate process with its own ML-DSA-65 key and its own state.

    python gatehouse_witness.py --state-dir DIR --log-keys keys.json --name NAME [--port 8650]

It speaks the add-checkpoint call of c2sp.org/tlog-witness over HTTP:

    POST /add-checkpoint
    old <size>
    <base64 consistency proof line>...
    <blank line>
    <checkpoint signed note>

and answers with a cosignature line (c2sp.org/tlog-cosignature: a timestamp and a signature
over "cosignature/v1\\ntime <t>\\n" + the checkpoint body). Before answering it checks the log's
signature, the consistency proof from the last checkpoint it cosigned for that origin, and
persists the new state (written to a file, fsynced, renamed). It never cosigns a smaller tree
or a different tree of the same size (a fork): 409 with its size when `old` is not the size it
holds, 422 when the proof does not verify. GET /state shows what it holds; its public key is
in DIR/witness-key.json (public part) for the gateway and auditors.

Standard library and pqcrypto only, like the verifier beside it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gatehouse_verify as gv  # noqa: E402

MAX_BODY = 1 << 20


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Witness:
    def __init__(self, state_dir: Path, name: str, log_keys: list[gv.PublicKey]) -> None:
        self.dir = state_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_keys = log_keys
        self.lock = threading.Lock()
        key_file = self.dir / "witness-secret.json"
        if key_file.exists():
            doc = json.loads(key_file.read_text())
            self.public = base64.b64decode(doc["public_key"])
            self.secret = base64.b64decode(doc["secret_key"])
            if doc["name"] != name:
                raise SystemExit(f"this state directory belongs to witness {doc['name']!r}")
        else:
            self.public, self.secret = gv.ml_dsa().keygen()
            self._write(
                key_file,
                {
                    "name": name,
                    "public_key": base64.b64encode(self.public).decode(),
                    "secret_key": base64.b64encode(self.secret).decode(),
                },
                mode=0o600,
            )
        self.kid = gv.key_id(name, "cosignature", self.public)
        self._write(
            self.dir / "witness-key.json",
            {
                "name": name,
                "key_id": self.kid.hex(),
                "algorithm": "ML-DSA-65",
                "public_key": base64.b64encode(self.public).decode(),
            },
        )
        state_file = self.dir / "state.json"
        self.state: dict[str, dict] = json.loads(state_file.read_text()) if state_file.exists() else {}

    def _write(self, path: Path, doc: dict, mode: int = 0o644) -> None:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def add_checkpoint(self, body: str) -> str:
        head, sep, note = body.partition("\n\n")
        if not sep:
            raise Refused(400, "the request has an old line, proof lines, a blank line and a checkpoint")
        lines = head.split("\n")
        if not lines[0].startswith("old ") or not lines[0][4:].isdigit():
            raise Refused(400, "the first line is 'old <size>'")
        old = int(lines[0][4:])
        try:
            proof = [base64.b64decode(line, validate=True) for line in lines[1:] if line]
            cp = gv.note_parse(note)
            gv.note_verify(cp, self.log_keys)
        except (ValueError, gv.VerificationError) as exc:
            raise Refused(403, f"checkpoint refused: {exc}") from exc
        with self.lock:
            held = self.state.get(cp.origin, {"size": 0, "root": gv.CompactRange().root().hex()})
            if old != held["size"]:
                raise Refused(409, str(held["size"]))
            if cp.size < held["size"]:
                raise Refused(409, str(held["size"]))
            if not gv.verify_consistency(held["size"], cp.size, bytes.fromhex(held["root"]), cp.root, proof):
                raise Refused(422, f"the consistency proof from size {held['size']} to {cp.size} does not verify")
            timestamp = int(time.time())
            sig = gv.ml_dsa().sign(self.secret, gv.cosignature_message(cp.body, timestamp))
            # Persist before answering: a restart never forgets what it cosigned.
            self.state[cp.origin] = {"size": cp.size, "root": cp.root.hex(), "time": timestamp}
            self._write(self.dir / "state.json", self.state)
        return gv.signature_line(self.name, self.kid, struct.pack(">Q", timestamp) + sig)


def handler_for(witness: Witness):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
            pass

        def _send(self, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            if self.path == "/state":
                self._send(200, json.dumps(witness.state), "application/json")
            elif self.path == "/key":
                self._send(200, (witness.dir / "witness-key.json").read_text(), "application/json")
            else:
                self._send(404, "not found\n")

        def do_POST(self):  # noqa: N802
            if self.path != "/add-checkpoint":
                self._send(404, "not found\n")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, "too large\n")
                return
            try:
                body = self.rfile.read(length).decode("utf-8")
                self._send(200, witness.add_checkpoint(body))
            except Refused as exc:
                if exc.status == 409:
                    self._send(409, f"{exc}\n", "text/x.tlog.size")
                else:
                    self._send(exc.status, f"{exc}\n")
            except UnicodeDecodeError:
                self._send(400, "not UTF-8\n")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a Gatehouse ledger witness.")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--log-keys", required=True, help="the gateway's well-known keys document (JSON)")
    parser.add_argument("--name", required=True, help="this witness's key name, e.g. witness.example.org/w1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8650)
    args = parser.parse_args(argv)
    with open(args.log_keys, encoding="utf-8") as fh:
        log_keys, _ = gv.keys_load(json.load(fh))
    witness = Witness(Path(args.state_dir), args.name, log_keys)
    server = HTTPServer((args.host, args.port), handler_for(witness))
    print(f"witness {args.name} ({witness.kid.hex()}) on http://{args.host}:{server.server_port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Python equivalent the cold-start benchmark compares against: FastAPI + uvicorn
serving the same routes as the `agent` and `auth` functions' first real answers
(/healthz, the caller's interviews from SQLite, whoami), the way a team would have
written these functions in Python."""

import json
import os
import sqlite3

from fastapi import FastAPI, HTTPException

app = FastAPI()
DB = os.path.join(os.environ.get("CATALYST_DATA_DIR", "./.catalyst"), "store.db")


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/v1/auth/whoami")
def whoami():
    return {"principal": {"kind": "dev", "uid": "dev", "scopes": ["*"]}}


@app.get("/v1/interviews")
def list_interviews(limit: int = 20):
    conn = sqlite3.connect(DB)
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS documents (collection TEXT, key TEXT, value TEXT, version INTEGER, "
            "expires_at INTEGER, PRIMARY KEY (collection, key))"
        )
        rows = conn.execute(
            "SELECT key, value, version FROM documents WHERE collection = 'interviews' AND key LIKE 'dev/%' "
            "ORDER BY key LIMIT ?",
            (limit,),
        ).fetchall()
    finally:
        conn.close()
    if limit < 1:
        raise HTTPException(400, "limit")
    return {"interviews": [{"id": k[4:], "version": v, "interview": json.loads(j)} for k, j, v in rows], "next": None}

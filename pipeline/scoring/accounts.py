"""Scored leads rolled up per account (``data.account_column``): the account file beside
the scores."""

from __future__ import annotations

import pandas as pd


def account_rollup(scored: pd.DataFrame, accounts: pd.Series, *, id_column: str) -> pd.DataFrame:
    """One row per account: leads, best lead, sum and mean of the top 3, share SDR-ready."""
    frame = scored.assign(account=accounts.to_numpy())
    frame = frame[frame["account"].notna()]
    rows = []
    for account, group in frame.groupby("account", sort=True):
        top = group.sort_values(["points", id_column], ascending=[False, True])
        top3 = top["points"].head(3)
        rows.append({"account": account, "leads": len(group), "best_lead": top[id_column].iloc[0],
                     "best_points": int(top["points"].iloc[0]), "top3_sum": int(top3.sum()),
                     "top3_mean": float(top3.mean()),
                     "sdr_ready_share": float(group["sdr_ready"].mean())})
    return pd.DataFrame(rows, columns=["account", "leads", "best_lead", "best_points", "top3_sum",
                                       "top3_mean", "sdr_ready_share"])


def lead_accounts(raw: pd.DataFrame, scored_ids: pd.Series, *, id_column: str,
                  account_column: str) -> pd.Series:
    """The account of each scored lead, aligned with ``scored_ids``.

    ``raw`` is the input as read (text, possibly with blank or duplicated ids and stray
    whitespace). Ids are stripped as scoring strips them; for a duplicated id the first row
    wins, as in scoring (the later rows are rejects). Blank accounts are missing.
    """
    ids = raw[id_column].astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
    accounts = raw[account_column].astype(object).map(
        lambda v: (v.strip() or None) if isinstance(v, str) else v)
    table = pd.Series(accounts.to_numpy(), index=pd.Index(ids.to_numpy(), dtype=object))
    table = table[table.index.notna() & ~table.index.duplicated(keep="first")]
    wanted = scored_ids.astype(str).to_numpy()
    return pd.Series(table.reindex(wanted).to_numpy(), index=scored_ids.index, dtype=object)

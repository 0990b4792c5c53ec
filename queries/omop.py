"""A synthetic OMOP-shaped example: each site's person, condition_occurrence and measurement tables.

Never real patient data. The tables carry a few columns of the OMOP Common Data Model with
the standard concept ids the example uses (`CONCEPTS`); rows are drawn with numpy's seeded
generator. A cohort defined by concept ids joins a site's own tables, which a query to the
consortium cannot do (one table, no joins): a site declares the join as a dataset of its own
(`COHORT_SQL`, a `query` dataset: docs/deployment.md), and the analyst's query reads it by
name (`FROM diabetes`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CONCEPTS = {
    8507: "MALE", 8532: "FEMALE",
    201826: "Type 2 diabetes mellitus", 316866: "Hypertensive disorder",
    3004410: "Hemoglobin A1c (%)", 3025315: "Body weight (kg)",
}
"""The OMOP standard concept ids the example uses, with their names."""
TABLES = ("person", "condition_occurrence", "measurement")

COHORT_SQL = """SELECT p.person_id,
       CASE p.gender_concept_id WHEN 8507 THEN 'M' WHEN 8532 THEN 'F' END AS sex,
       2025 - p.year_of_birth AS age,
       EXISTS (SELECT 1 FROM condition_occurrence h
               WHERE h.person_id = p.person_id AND h.condition_concept_id = 316866) AS hypertension,
       (SELECT AVG(m.value_as_number) FROM measurement m
        WHERE m.person_id = p.person_id AND m.measurement_concept_id = 3004410) AS hba1c
FROM person p
WHERE EXISTS (SELECT 1 FROM condition_occurrence c
              WHERE c.person_id = p.person_id AND c.condition_concept_id = 201826)"""
"""A site's dataset "diabetes": people with type 2 diabetes, their sex, age, hypertension (0/1)
and mean HbA1c; standard SQL that runs in PostgreSQL and in DuckDB."""


def omop_site(persons: int, seed: int = 0, first_id: int = 1) -> dict[str, pd.DataFrame]:
    """One site's three tables for `persons` people (ids from `first_id`)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(first_id, first_id + persons, dtype=np.int64)
    person = pd.DataFrame({
        "person_id": ids,
        "gender_concept_id": rng.choice([8507, 8532], persons),
        "year_of_birth": rng.integers(1935, 2005, persons),
    })
    age = 2025 - person["year_of_birth"].to_numpy()
    diabetic = rng.random(persons) < 0.08 + 0.004 * (age - 20)
    hypertensive = rng.random(persons) < 0.15 + 0.006 * (age - 20) + 0.1 * diabetic
    conditions = [(i, 201826) for i in ids[diabetic]] + [(i, 316866) for i in ids[hypertensive]]
    condition = pd.DataFrame(conditions, columns=["person_id", "condition_concept_id"]).astype("int64")
    condition.insert(0, "condition_occurrence_id", np.arange(1, len(condition) + 1, dtype=np.int64) + first_id * 10)
    condition["condition_start_date"] = [f"20{rng.integers(10, 25):02d}-{rng.integers(1, 13):02d}-15"
                                         for _ in range(len(condition))]
    rows = []
    for i, d in zip(ids, diabetic):
        for _ in range(rng.integers(0, 4)):
            rows.append((i, 3004410, round(float(rng.normal(7.4 if d else 5.4, 0.8)), 1)))
        rows.append((i, 3025315, round(float(rng.normal(80, 14)), 1)))
    measurement = pd.DataFrame(rows, columns=["person_id", "measurement_concept_id", "value_as_number"])
    measurement.insert(0, "measurement_id", np.arange(1, len(measurement) + 1, dtype=np.int64) + first_id * 10)
    measurement["measurement_date"] = "2024-06-01"
    return {"person": person, "condition_occurrence": condition, "measurement": measurement}


def omop_sites(persons: int, parties: int, seed: int = 0) -> list[dict[str, pd.DataFrame]]:
    """`parties` sites sharing `persons` people in unequal shares (each at least one)."""
    if parties < 1 or persons < parties:
        raise ValueError(f"cannot split {persons} people over {parties} sites")
    weights = np.random.default_rng(seed + 1).uniform(0.5, 1.5, parties)
    sizes = np.maximum(np.floor(weights / weights.sum() * persons).astype(int), 1)
    starts = np.concatenate([[1], 1 + np.cumsum(sizes)[:-1]])
    return [omop_site(int(n), seed + k, int(s)) for k, (n, s) in enumerate(zip(sizes, starts))]


def write_omop(persons: int, parties: int, out_dir: str | Path, seed: int = 0) -> list[Path]:
    """Write each site's tables as CSV files under site_K/ and return their paths."""
    paths = []
    for k, tables in enumerate(omop_sites(persons, parties, seed), start=1):
        site = Path(out_dir) / f"site_{k}"
        site.mkdir(parents=True, exist_ok=True)
        for name, frame in tables.items():
            frame.to_csv(site / f"{name}.csv", index=False)
            paths.append(site / f"{name}.csv")
    return paths

-- The workspace schema as first released (version 1). Frozen: never edit this file.
-- New workspaces are created from storage/models.py; this file exists so that tests can
-- build a genuine v1 workspace and check that opening it upgrades it in place.
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (1);
CREATE TABLE annotators (
	id INTEGER NOT NULL, name VARCHAR(200) NOT NULL, is_pseudo BOOLEAN NOT NULL,
	created_at DATETIME NOT NULL, PRIMARY KEY (id), UNIQUE (name)
);
CREATE TABLE prompts (
	id INTEGER NOT NULL, text TEXT NOT NULL, messages_json TEXT, hash VARCHAR(32) NOT NULL,
	created_at DATETIME NOT NULL, PRIMARY KEY (id), UNIQUE (hash)
);
CREATE TABLE reference_logps (
	id INTEGER NOT NULL, model_key VARCHAR(64) NOT NULL, tokenization_key VARCHAR(64) NOT NULL,
	example_hash VARCHAR(32) NOT NULL, chosen_logp FLOAT NOT NULL, rejected_logp FLOAT NOT NULL,
	chosen_tokens INTEGER NOT NULL, rejected_tokens INTEGER NOT NULL, created_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_reference_logp_key UNIQUE (model_key, tokenization_key, example_hash)
);
CREATE TABLE runs (
	id VARCHAR(64) NOT NULL, name VARCHAR(200) NOT NULL, status VARCHAR(16) NOT NULL,
	config_json TEXT NOT NULL, base_model VARCHAR(1000) NOT NULL, run_dir VARCHAR(1000) NOT NULL,
	adapter_path VARCHAR(1000), error TEXT, step INTEGER NOT NULL, total_steps INTEGER NOT NULL,
	created_at DATETIME NOT NULL, started_at DATETIME, finished_at DATETIME, PRIMARY KEY (id)
);
CREATE TABLE metrics (
	id INTEGER NOT NULL, run_id VARCHAR(64) NOT NULL, step INTEGER NOT NULL, split VARCHAR(8) NOT NULL,
	name VARCHAR(64) NOT NULL, value FLOAT NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (id),
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_metrics_run_name_step ON metrics (run_id, name, step);
CREATE TABLE responses (
	id INTEGER NOT NULL, prompt_id INTEGER NOT NULL, text TEXT NOT NULL, messages_json TEXT,
	origin VARCHAR(16) NOT NULL, model_name VARCHAR(500), parent_id INTEGER, hash VARCHAR(32) NOT NULL,
	created_at DATETIME NOT NULL, PRIMARY KEY (id),
	CONSTRAINT uq_response_prompt_hash UNIQUE (prompt_id, hash),
	FOREIGN KEY(prompt_id) REFERENCES prompts (id) ON DELETE CASCADE,
	FOREIGN KEY(parent_id) REFERENCES responses (id) ON DELETE SET NULL
);
-- v1 pairs had no stored display side and no split (both came in v2).
CREATE TABLE pairs (
	id INTEGER NOT NULL, prompt_id INTEGER NOT NULL, response_a_id INTEGER NOT NULL,
	response_b_id INTEGER NOT NULL, source VARCHAR(500) NOT NULL, created_at DATETIME NOT NULL,
	PRIMARY KEY (id), CONSTRAINT uq_pair_responses UNIQUE (response_a_id, response_b_id),
	FOREIGN KEY(prompt_id) REFERENCES prompts (id) ON DELETE CASCADE,
	FOREIGN KEY(response_a_id) REFERENCES responses (id) ON DELETE CASCADE,
	FOREIGN KEY(response_b_id) REFERENCES responses (id) ON DELETE CASCADE
);
CREATE INDEX ix_pairs_prompt ON pairs (prompt_id);
-- v1 verdicts were plain rows: no note, no resolution flag, undo deleted the row.
CREATE TABLE verdicts (
	id INTEGER NOT NULL, pair_id INTEGER NOT NULL, annotator_id INTEGER NOT NULL,
	choice VARCHAR(16) NOT NULL, seconds_spent FLOAT NOT NULL, created_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(pair_id) REFERENCES pairs (id) ON DELETE CASCADE,
	FOREIGN KEY(annotator_id) REFERENCES annotators (id) ON DELETE CASCADE
);
CREATE INDEX ix_verdicts_pair_annotator ON verdicts (pair_id, annotator_id);
CREATE INDEX ix_verdicts_annotator_created ON verdicts (annotator_id, created_at);

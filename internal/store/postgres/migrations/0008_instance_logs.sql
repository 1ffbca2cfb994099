ALTER TABLE instances ADD COLUMN log_dir text NOT NULL DEFAULT '';

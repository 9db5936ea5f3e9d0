-- Run with psql between walkthrough.sql and import.sql: someone edits the exported rows.
UPDATE items SET price = 3.75 WHERE id = 1;
UPDATE items SET price = NULL WHERE id = 2;
INSERT INTO items VALUES (4, 'juice', 2.5, '2026-11-26 11:00:00');

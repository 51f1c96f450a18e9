-- Analysts: rejections by reason across every job over a time range, from the 1-minute job windows.
-- Without it that read scans the whole table (the primary key and job_window_company both lead with an id).
-- `rejected` rides along so windows without a rejection are skipped inside the index.
ALTER TABLE job_window_stats
    ADD KEY job_window_time (window_start, rejected);

-- Issue #25, must-have 7 (行政处罚法 Art. 42: 执法人员不得少于两人，并应当主动出示执法证件):
-- an account's 执法证号, edited on the admin page; a notice names two officers who have one.
ALTER TABLE accounts ADD COLUMN badge_no text CHECK (badge_no IS NULL OR length(badge_no) <= 40);

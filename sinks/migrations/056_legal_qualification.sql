-- Issue #25, review B5 (行政处罚法 Art. 58 para 2: 初次从事行政处罚决定法制审核的人员，应当通过国家统一
-- 法律职业资格考试取得法律职业资格): an account's 法律职业资格证书编号, set with add-user --legal-cert or
-- on the admin page; 法制审核 (approve, review_after_hearing) is refused to an account without one.
ALTER TABLE accounts ADD COLUMN legal_cert_no text
    CHECK (legal_cert_no IS NULL OR length(legal_cert_no) <= 40);

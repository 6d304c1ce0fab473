"""Review D.12: a document's image captions say what the image is, never its file name."""

from __future__ import annotations

from console.names import image_caption


def test_d12_an_evidence_image_is_captioned_by_what_it_shows() -> None:
    # the names evidence/bag.py gives a package's images: <role>.jpg, a second one of a role
    # <role>-1.jpg, and the composite
    assert image_caption("front.jpg") == "车辆前方抓拍"
    assert image_caption("front-1.jpg") == "车辆前方抓拍（2）"
    assert image_caption("plate.jpg") == "车牌特写"
    assert image_caption("side.jpg") == "车辆侧面抓拍"
    assert image_caption("rear.jpg") == "车辆后方抓拍"
    assert image_caption("overview.jpg") == "全景抓拍"
    assert image_caption("composite.jpg").startswith("证据合成图")
    # a name no role explains is still not printed as it is
    assert image_caption("x-y.jpg") == "证据图像"
    assert ".jpg" not in image_caption("IMG_0001.jpg")

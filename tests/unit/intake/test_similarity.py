"""Near-duplicate write-ups: MinHash signatures of character n-grams (issue 11)."""

from __future__ import annotations

from daemon.intake.similarity import signature, similar_pairs


def similarity(a: str, b: str) -> float:
    """The pair's estimate as similar_pairs finds it (0.0 when it does not pair them at all)."""
    return next((score for _, _, score in similar_pairs([(1, a), (2, b)], threshold=0.05)), 0.0)


WRITE_UP = (
    "企业始终坚持“质量第一、效益优先”的发展理念，建立了覆盖设计、采购、生产、检验、服务全过程的质量管理体系。"
    "通过开展质量诊断和对标提升，企业质量管理成熟度评价由三级提升至四级。近三年来，企业主要产品一次交验合格率"
    "由97.6%提升至99.3%，顾客满意度连续三年保持在95分以上。围绕关键质量特性，企业开展了质量攻关活动，累计完成"
    "QC小组课题86项，其中获省级以上奖励12项。"
)
OTHER = (
    "公司以数字化转型为抓手，建成覆盖原料入厂到成品出厂的质量追溯平台，实现关键工序数据实时采集与分析。"
    "平台上线后，内部质量损失率下降42%，客户投诉处理周期由七天缩短到两天，带动上下游二十余家配套企业共同提升。"
)


def test_a_write_up_with_a_changed_name_and_line_breaks_is_a_near_duplicate() -> None:
    copied = WRITE_UP.replace("企业", "本公司", 1).replace("。", "。\n")
    assert similarity(signature(WRITE_UP), signature(copied)) > 0.8
    assert similar_pairs([("a", signature(WRITE_UP)), ("b", signature(copied))], threshold=0.8)[0][:2] == ("a", "b")


def test_different_write_ups_are_not_similar() -> None:
    assert similarity(signature(WRITE_UP), signature(OTHER)) < 0.1
    assert similar_pairs([("a", signature(WRITE_UP)), ("b", signature(OTHER))], threshold=0.5) == []


def test_full_width_forms_and_spaces_change_nothing() -> None:
    assert similarity(signature("ＱＣ小组课题 86 项"), signature("QC小组课题86项")) == 1.0


def test_a_signature_is_short_enough_to_store_beside_the_document() -> None:
    assert len(signature(WRITE_UP)) < 2000


def test_many_texts_are_paired_only_where_they_are_near_identical() -> None:
    texts = [(number, signature(OTHER + f"第{number}段：" + WRITE_UP[number * 7 :])) for number in range(8)]
    texts.append((99, signature(WRITE_UP.replace("企业", "公司"))))
    found = similar_pairs(texts, threshold=0.8)
    assert all(a < b and score >= 0.8 for a, b, score in found)
    assert (0, 1) in {(a, b) for a, b, _ in found} and all(99 not in pair[:2] for pair in found)


def test_an_empty_text_resembles_nothing_not_even_another_empty_text() -> None:
    assert signature(" \n") == ""
    assert similarity(signature(""), signature("")) == 0.0
    assert similarity(signature(""), signature(WRITE_UP)) == 0.0


def test_a_text_shorter_than_a_shingle_still_gets_a_signature() -> None:
    assert similarity(signature("质量"), signature("质量")) == 1.0

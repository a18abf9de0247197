"""What the labels sensor counts as a label batch."""


def test_a_label_file_saved_with_a_bom_or_quoted_names_is_a_batch(tmp_path):
    from mlops_assets.sensors.labels import readable

    bom = tmp_path / "excel.csv"
    bom.write_bytes('\ufeff"patient_id","diagnosis"\nP0001,benign\n'.encode())
    assert readable(str(bom), {"patient_id", "diagnosis"}) is None
    missing = tmp_path / "missing.csv"
    missing.write_text("patient_id,label\nP0001,benign\n")
    assert readable(str(missing), {"patient_id", "diagnosis"}) == "missing column(s) ['diagnosis']"

from coursekit.book.prose import power_of_ten


def test_power_of_ten_writes_superscript_exponents_without_a_unit_mantissa():
    assert power_of_ten(2.3e-6) == "2 × 10⁻⁶"
    assert power_of_ten(2.3e-6, digits=1) == "2.3 × 10⁻⁶"
    assert power_of_ten(0.0104) == "10⁻²"
    assert power_of_ten(-1e-8) == "−10⁻⁸"
    assert power_of_ten(3.8e-7, digits=1) == "3.8 × 10⁻⁷"
    assert power_of_ten(12345.0) == "10⁴"
    assert power_of_ten(25000.0) == "2 × 10⁴"

namespace Orleans.MoE.Tensors.Tests;

public sealed class WeightMatrixTests
{
    [Fact]
    public void Slicing_rows_views_those_rows()
    {
        var matrix = WeightMatrix.FromArray([1, 2, 3, 4, 5, 6], 3, 2);
        Assert.Equal([3f, 4f, 5f, 6f], matrix.SliceRows(1, 2).ToArray());
        Assert.Equal([1f, 2f], matrix.SliceRows(0, 1).ToArray());
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], matrix.SliceRows(0, 3).ToArray());
        Assert.Equal([5f, 6f], matrix.SliceRows(2, 1).ToArray());
    }

    [Theory]
    [InlineData(2, 2)] // runs one row past the end
    [InlineData(3, 1)] // starts at the end
    [InlineData(4, 0)] // starts past the end
    [InlineData(-1, 1)]
    [InlineData(0, -1)]
    [InlineData(0, 4)]
    [InlineData(1, int.MaxValue)] // start + count overflows int
    [InlineData(0, 0)] // an empty matrix is not a matrix
    public void Slicing_outside_the_rows_is_refused(int start, int count)
    {
        var matrix = WeightMatrix.FromArray([1, 2, 3, 4, 5, 6], 3, 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => matrix.SliceRows(start, count));
    }

    [Theory]
    [InlineData(DType.BF16)]
    [InlineData(DType.F16)]
    public void Slices_of_two_byte_weights_start_at_the_right_row(DType dtype)
    {
        float[] values = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        using var stored = StoredMatrix.Create(values, 3, 3, dtype);
        var slice = stored.Matrix.SliceRows(1, 2);
        Assert.Equal(dtype, slice.DType);
        Assert.Equal(2 * 3 * 2, slice.ByteCount);
        Assert.Equal([4f, 5f, 6f, 7f, 8f, 9f], slice.ToArray());
        var row = new float[3];
        slice.ReadRow(1, row);
        Assert.Equal([7f, 8f, 9f], row);
    }

    [Fact]
    public void Reading_a_row_outside_the_matrix_is_refused()
    {
        var matrix = WeightMatrix.FromArray([1, 2, 3, 4], 2, 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => matrix.ReadRow(2, new float[2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => matrix.ReadRow(-1, new float[2]));
    }

    [Fact]
    public void Only_floating_point_weights_with_rows_and_columns_are_accepted()
    {
        Assert.Throws<ArgumentException>(() => new WeightMatrix(1, 2, 2, DType.I64));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WeightMatrix(1, 0, 2, DType.F32));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WeightMatrix(1, 2, -1, DType.F32));
        Assert.Throws<ArgumentException>(() => WeightMatrix.FromArray([1, 2, 3], 2, 2));
    }
}

namespace Orleans.MoE.Testing;

/// <summary>Waits for something the cluster does in the background.</summary>
public static class Eventually
{
    /// <summary>Polls <paramref name="condition"/> until it holds or <paramref name="seconds"/> pass; returns whether it held.</summary>
    public static async Task<bool> TrueAsync(Func<bool> condition, double seconds = 5)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow >= deadline)
            {
                return false;
            }

            await Task.Delay(20);
        }

        return true;
    }

    /// <summary>Polls the asynchronous <paramref name="condition"/> until it holds or <paramref name="seconds"/> pass; returns whether it held.</summary>
    public static async Task<bool> TrueAsync(Func<Task<bool>> condition, double seconds = 5)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            if (DateTime.UtcNow >= deadline)
            {
                return false;
            }

            await Task.Delay(20);
        }

        return true;
    }
}

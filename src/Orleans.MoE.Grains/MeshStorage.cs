namespace Orleans.MoE.Grains;

/// <summary>The grain storage provider the mesh keeps its state in (the expert plan): register one under <see cref="Name"/>.</summary>
public static class MeshStorage
{
    public const string Name = "moe";
}

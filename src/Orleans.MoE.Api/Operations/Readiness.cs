using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Orleans.MoE.Api.OpenAi;

namespace Orleans.MoE.Api.Operations;

/// <summary>
/// <c>/readyz</c>: 200 when the mesh can serve every model it lists (at least one), that is every expert of
/// every MoE layer is in the plan on a live silo; 503 with the reason otherwise.
/// </summary>
internal static class Readiness
{
    public static async Task WriteAsync(HttpContext context)
    {
        var problems = new Dictionary<string, string>(StringComparer.Ordinal);
        string[] models = [];
        try
        {
            var snapshot = await context.RequestServices.GetRequiredService<MeshSnapshots>().ReadAsync().ConfigureAwait(false);
            var live = snapshot.Silos.Select(s => s.Address).ToHashSet();
            models = snapshot.Models.Select(m => m.Model).ToArray();
            foreach (var status in snapshot.Models)
            {
                var info = snapshot.ModelInfos[status.Model];
                var placed = status.Plan.Experts.Where(p => live.Contains(p.Silo)).Select(p => (p.Layer, p.Expert)).ToHashSet();
                var missing = info.MoeLayers.Sum(layer => Enumerable.Range(0, info.Experts).Count(e => !placed.Contains((layer, e))));
                if (missing > 0)
                {
                    problems[status.Model] = $"{missing} experts have no place on a live silo yet";
                }
            }

            if (models.Length == 0)
            {
                problems["mesh"] = "no silo serves a model";
            }
        }
        catch (Exception e) when (ApiException.FromMesh(e) is not null)
        {
            problems["mesh"] = e.Message;
        }

        await ResponseWriter.WriteJsonAsync(context.Response, problems.Count == 0 ? 200 : 503, json =>
        {
            json.WriteStartObject();
            json.WriteString("status", problems.Count == 0 ? "ready" : "not_ready");
            json.WriteStartObject("models");
            foreach (var model in models)
            {
                json.WriteString(model, problems.GetValueOrDefault(model, "ready"));
            }

            json.WriteEndObject();
            if (problems.TryGetValue("mesh", out var mesh))
            {
                json.WriteString("reason", mesh);
            }

            json.WriteEndObject();
        }, context.RequestAborted).ConfigureAwait(false);
    }
}

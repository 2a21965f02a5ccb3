using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Orleans.MoE.Runtime.Hosting;
using Orleans.MoE.Runtime.Membership;
using Orleans.MoE.Runtime.Storage;

namespace Orleans.MoE.Runtime.PostgreSql;

public static class PostgreSqlSiloExtensions
{
    /// <summary>Membership in PostgreSQL (a real multi-host cluster).</summary>
    public static ISiloBuilder UsePostgreSqlMembership(this ISiloBuilder builder, string connectionString, string clusterId)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IMembershipTable>(new PostgreSqlMembershipTable(NpgsqlDataSource.Create(connectionString), clusterId));
        return builder;
    }

    /// <summary>Grain state in PostgreSQL under the given storage name.</summary>
    public static ISiloBuilder AddPostgreSqlGrainStorage(this ISiloBuilder builder, string connectionString, string serviceId, string name = PersistentStateAttribute.DefaultStorage)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddKeyedSingleton<IGrainStorage>(name, new PostgreSqlGrainStorage(NpgsqlDataSource.Create(connectionString), serviceId));
        return builder;
    }
}

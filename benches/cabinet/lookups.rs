//! Lookups by id and by domain through the library, against pgbench running the same query.

use cabinet_db::{models::SiteId, sites};

use crate::{
    Bench,
    measure::{pgbench, throughput},
    report::{Row, Stats, throughput_row},
};

pub async fn lookups(bench: &Bench) -> Vec<Row> {
    let n = bench.args.sites;
    bench
        .exec(
            "bench",
            &format!(
                "INSERT INTO sites (site_id, domain, ai_prompt, brand_name, language)
                 SELECT i::text, 'site' || i || '.example.com', repeat('You are helpful. ', 40), 'Brand ' || i, 'en'
                   FROM generate_series(1, {n}) i;
                 ANALYZE sites"
            ),
        )
        .await;
    let pool = bench.pool(bench.args.concurrency).await;
    let (mut by_id, mut by_domain, mut reference) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..bench.repeat() {
        let p = pool.clone();
        by_id.push(
            throughput(bench.args.concurrency, bench.seconds(), move |task, i| {
                let p = p.clone();
                async move {
                    let id = SiteId::parse(&(1 + (task as u64 * 7919 + i * 104_729) % n as u64).to_string())
                        .unwrap();
                    sites::get(&p, &id).await.unwrap().expect("site exists");
                    1
                }
            })
            .await,
        );
        let p = pool.clone();
        by_domain.push(
            throughput(bench.args.concurrency, bench.seconds(), move |task, i| {
                let p = p.clone();
                async move {
                    let domain =
                        format!("Site{}.Example.com", 1 + (task as u64 * 7919 + i * 104_729) % n as u64);
                    sites::get_by_domain(&p, &domain).await.unwrap().expect("site exists");
                    1
                }
            })
            .await,
        );
        reference.push(pgbench(
            bench,
            &format!(
                "\\set id random(1, {n})\nSELECT site_id, domain, ai_script_id, ai_prompt, brand_name, language, hubspot_pipeline, hubspot_stage, created_at FROM sites WHERE site_id = :id;\n"
            ),
        ));
    }
    let (by_id, by_domain, reference) = (Stats::of(by_id), Stats::of(by_domain), Stats::of(reference));
    vec![
        throughput_row(
            &format!("site by id, {} clients (n8n's lookup)", bench.args.concurrency),
            "lookups/s",
            by_id,
            "pgbench -M prepared, same query",
            reference,
            0.8,
        ),
        throughput_row(
            "site by domain, same clients",
            "lookups/s",
            by_domain,
            "cabinet-db by id (above)",
            by_id,
            0.8,
        ),
    ]
}

//! The sites library API, on real PostgreSQL.

use cabinet_db::{
    data::DataError,
    models::{Domain, LanguageTag, SiteId},
    sites::{self, NewSite, SiteFilter, SitePatch},
};

use crate::harness::TestDb;

pub fn new_site(id: &str, domain: &str) -> NewSite {
    NewSite {
        site_id: SiteId::parse(id).unwrap(),
        domain: Domain::parse(domain).unwrap(),
        ai_script_id: Some("support-v2".into()),
        ai_prompt: Some("You are helpful.".into()),
        brand_name: Some("Brand".into()),
        language: LanguageTag::parse("en").unwrap(),
        hubspot_pipeline: None,
        hubspot_stage: None,
    }
}

#[tokio::test]
async fn create_get_update_delete_round_trip() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    let id = SiteId::parse("acme").unwrap();

    let created = sites::create(&mut conn, None, &new_site("acme", "Shop.ACME.example.com")).await.unwrap();
    assert_eq!(created.domain, "shop.acme.example.com", "domains are stored lower-case");

    let by_domain = sites::get_by_domain(&mut conn, "SHOP.acme.example.com").await.unwrap().unwrap();
    assert_eq!(by_domain, created);

    // A partial update changes only the named fields; created_at never changes.
    let patch = SitePatch {
        brand_name: Some(Some("ACME GmbH".into())),
        ai_prompt: Some(None),
        language: Some(LanguageTag::parse("de").unwrap()),
        ..SitePatch::default()
    };
    let updated = sites::update(&mut conn, None, &id, &patch, None).await.unwrap().unwrap();
    assert_eq!(updated.brand_name.as_deref(), Some("ACME GmbH"));
    assert_eq!(updated.ai_prompt, None);
    assert_eq!(updated.language, "de");
    assert_eq!(updated.ai_script_id, created.ai_script_id);
    assert_eq!(updated.domain, created.domain);
    assert_eq!(updated.created_at, created.created_at);

    assert!(sites::delete(&mut conn, None, &id).await.unwrap());
    assert!(!sites::delete(&mut conn, None, &id).await.unwrap());
    assert_eq!(sites::get(&mut conn, &id).await.unwrap(), None);
    let missing = sites::update(&mut conn, None, &id, &patch, None).await.unwrap();
    assert_eq!(missing, None);
}

#[tokio::test]
async fn duplicates_and_rule_breaks_map_to_the_constraint_sentence() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    sites::create(&mut conn, None, &new_site("acme", "acme.example.com")).await.unwrap();

    let same_id = sites::create(&mut conn, None, &new_site("acme", "other.example.com")).await.unwrap_err();
    assert!(
        matches!(&same_id, DataError::Rejected { constraint, .. } if constraint == "sites_pkey"),
        "{same_id}"
    );
    assert_eq!(same_id.to_string(), "a site with this site_id already exists (constraint sites_pkey)");

    let same_domain =
        sites::create(&mut conn, None, &new_site("acme2", "ACME.example.com")).await.unwrap_err();
    assert!(same_domain.to_string().contains("another site already uses this domain"), "{same_domain}");

    let mut stage_only = new_site("s3", "s3.example.com");
    stage_only.hubspot_stage = Some("won".into());
    let err = sites::create(&mut conn, None, &stage_only).await.unwrap_err();
    assert!(matches!(err, DataError::Invalid(_)), "refused before the round trip: {err}");

    // The database's own rule catches what the patch cannot see: a stage without a pipeline.
    let patch = SitePatch { hubspot_stage: Some(Some("won".into())), ..SitePatch::default() };
    let err =
        sites::update(&mut conn, None, &SiteId::parse("acme").unwrap(), &patch, None).await.unwrap_err();
    assert!(err.to_string().contains("a stage belongs to a pipeline"), "{err}");
}

#[tokio::test]
async fn list_filters_and_pages_by_site_id() {
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    for i in 0..25 {
        let mut site = new_site(&format!("site-{i:02}"), &format!("s{i}.example.com"));
        if i % 5 == 0 {
            site.language = LanguageTag::parse("de").unwrap();
        }
        sites::create(&mut conn, None, &site).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = sites::list(&mut conn, &SiteFilter::default(), after.as_deref(), 10).await.unwrap();
        seen.extend(page.items.iter().map(|s| s.site_id.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("site-{i:02}")).collect();
    assert_eq!(seen, expected);

    let german = SiteFilter { language: Some(LanguageTag::parse("de").unwrap()), ..SiteFilter::default() };
    assert_eq!(sites::list(&mut conn, &german, None, 100).await.unwrap().items.len(), 5);
    let contains = SiteFilter { domain_contains: Some("S1".into()), ..SiteFilter::default() };
    let matched: Vec<String> = sites::list(&mut conn, &contains, None, 100)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.domain)
        .collect();
    assert_eq!(matched.len(), 11, "s1 and s10..s19: {matched:?}");
}

#[tokio::test]
async fn pages_stay_stable_while_rows_are_inserted_concurrently() {
    // Arrange: 40 sites; a writer inserts more (before and after the cursor) while we page.
    let db = TestDb::migrated().await;
    let mut conn = db.conn().await;
    for i in 0..40 {
        sites::create(&mut conn, None, &new_site(&format!("m-{i:03}"), &format!("m{i}.example.com")))
            .await
            .unwrap();
    }
    let writer_url = db.url.clone();
    let writer = tokio::spawn(async move {
        let mut conn = cabinet_db::db::connect(&writer_url, "writer").await.unwrap();
        for i in 0..40 {
            for prefix in ["a", "z"] {
                let id = format!("{prefix}-{i:03}");
                sites::create(&mut conn, None, &new_site(&id, &format!("{prefix}{i}.example.com")))
                    .await
                    .unwrap();
            }
            tokio::task::yield_now().await;
        }
    });

    // Act: page through with small pages.
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = sites::list(&mut conn, &SiteFilter::default(), after.as_deref(), 7).await.unwrap();
        seen.extend(page.items.iter().map(|s| s.site_id.clone()));
        tokio::task::yield_now().await;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    writer.await.unwrap();

    // Assert: strictly increasing (no duplicates, no going back) and every original row seen.
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    for i in 0..40 {
        assert!(seen.contains(&format!("m-{i:03}")), "m-{i:03} was skipped");
    }
}

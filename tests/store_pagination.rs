//! Keyset pagination walks 2,500 rows in pages of 100 without gaps or
//! repeats, on SQLite and PostgreSQL.

mod common;

use std::collections::HashSet;

use chrono::Duration as Days;
use clm::db::Databases;
use clm::model::*;
use clm::store::certificates::{self, CertificateFilter};
use clm::store::{Page, PageRequest, now};
use common::*;

const ROWS: usize = 2_500;
const PAGE: u32 = 100;

#[tokio::test]
async fn keyset_walks_have_no_gaps_or_repeats() {
    on_both(|db: Databases| async move {
        let mut tx = db.secure.begin().await.unwrap();
        let t = now();
        // 50 distinct expiry instants, so most rows tie on not_after and the
        // id tie-break decides.
        let rows: Vec<Certificate> = (0..ROWS)
            .map(|i| {
                certificate(
                    &format!("p{i}.example.com"),
                    t + Days::days((i % 50) as i64 + 1),
                )
            })
            .collect();
        certificates::insert_many(&mut tx.conn(), &rows)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        let filter = CertificateFilter::default();

        // id order
        let mut by_id = Vec::new();
        let mut pages = 0;
        let mut req = PageRequest::first(PAGE);
        loop {
            let page: Page<Certificate> = certificates::list_certificates(&mut c, &filter, &req)
                .await
                .unwrap();
            pages += 1;
            assert!(page.items.len() <= PAGE as usize);
            by_id.extend(page.items.iter().map(|c| c.id));
            match page.next_cursor {
                Some(cursor) => req = PageRequest::after(PAGE, Some(cursor)),
                None => break,
            }
        }
        assert_eq!(pages, ROWS / PAGE as usize);
        let mut expected: Vec<_> = rows.iter().map(|c| c.id).collect();
        expected.sort();
        assert_eq!(by_id, expected, "every row once, in id order");

        // (not_after, id) order
        let mut walked = Vec::new();
        let mut req = PageRequest::first(PAGE);
        loop {
            let page = certificates::search_certificates(&mut c, &filter, &req)
                .await
                .unwrap();
            walked.extend(page.items.iter().map(|c| (c.not_after, c.id)));
            match page.next_cursor {
                Some(cursor) => req = PageRequest::after(PAGE, Some(cursor)),
                None => break,
            }
        }
        assert_eq!(walked.len(), ROWS);
        let unique: HashSet<_> = walked.iter().map(|(_, id)| *id).collect();
        assert_eq!(unique.len(), ROWS, "no repeats");
        let mut sorted = walked.clone();
        sorted.sort();
        assert_eq!(walked, sorted, "ordered by (not_after, id)");
        let mut expected: Vec<_> = rows.iter().map(|c| (c.not_after, c.id)).collect();
        expected.sort();
        assert_eq!(walked, expected);

        // A tampered cursor is an input error, not a panic.
        let err = certificates::search_certificates(
            &mut c,
            &filter,
            &PageRequest::after(PAGE, Some("not-a-cursor".into())),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), clm::ErrorCode::InvalidInput);
    })
    .await;
}

//! One kind of object of the API as the CLI sees it: where it lives
//! (`/v1/buckets`, `/api/tenants`, inputs under `/v1/buckets/{id}/inputs`),
//! what one is called, and the columns of its list. The verbs every kind
//! has — create, list, show, update, delete — are the same requests and
//! the same printing for all of them, so they live here once; the object
//! modules build the request bodies from flags.

use reqwest::Method;
use serde_json::Value;

use super::http::ApiClient;
use super::table::{Column, View};

pub(crate) struct Collection {
    /// `"v1"`, or `"api"` for the administration API's tenants.
    pub(crate) api: &'static str,
    /// The collection's path segment and its key in a list answer.
    pub(crate) name: &'static str,
    /// One of them, as printed: `deleted bucket bkt_…`.
    pub(crate) noun: &'static str,
    pub(crate) columns: &'static [Column],
}

impl Collection {
    /// `POST /{api}/{name}`.
    pub(crate) async fn create(
        &self,
        api: &ApiClient,
        view: View,
        body: &Value,
    ) -> anyhow::Result<()> {
        view.object(
            &api.send(Method::POST, &[self.api, self.name], Some(body))
                .await?,
        );
        Ok(())
    }

    /// `POST /v1/buckets/{bucket}/{name}`: an object that belongs to a bucket.
    pub(crate) async fn create_in(
        &self,
        api: &ApiClient,
        view: View,
        bucket: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<()> {
        let path = [self.api, "buckets", bucket, self.name];
        view.object(&api.send(Method::POST, &path, body).await?);
        Ok(())
    }

    /// `GET /{api}/{name}`.
    pub(crate) async fn list(&self, api: &ApiClient, view: View) -> anyhow::Result<()> {
        let answer = api.get(&[self.api, self.name], &[], None).await?;
        view.list(&answer, self.name, self.columns);
        Ok(())
    }

    /// `GET /v1/buckets/{bucket}/{name}`.
    pub(crate) async fn list_in(
        &self,
        api: &ApiClient,
        view: View,
        bucket: &str,
    ) -> anyhow::Result<()> {
        let answer = api
            .get(&[self.api, "buckets", bucket, self.name], &[], None)
            .await?;
        view.list(&answer, self.name, self.columns);
        Ok(())
    }

    /// `GET /{api}/{name}/{id}`.
    pub(crate) async fn show(&self, api: &ApiClient, view: View, id: &str) -> anyhow::Result<()> {
        view.object(&api.get(&[self.api, self.name, id], &[], None).await?);
        Ok(())
    }

    /// `PATCH /{api}/{name}/{id}`.
    pub(crate) async fn update(
        &self,
        api: &ApiClient,
        view: View,
        id: &str,
        body: &Value,
    ) -> anyhow::Result<()> {
        let path = [self.api, self.name, id];
        view.object(&api.send(Method::PATCH, &path, Some(body)).await?);
        Ok(())
    }

    /// `DELETE /{api}/{name}/{id}`.
    pub(crate) async fn delete(&self, api: &ApiClient, view: View, id: &str) -> anyhow::Result<()> {
        api.send(Method::DELETE, &[self.api, self.name, id], None)
            .await?;
        view.deleted(self.noun, id);
        Ok(())
    }
}

pub mod proto {
    pub mod v1alpha1 {
        tonic::include_proto!("v1alpha1");
    }
}
